package loadtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// RecorderConfig says what studio load to make: Recorders members
// recording takes at once in one channel, each uploading a chunk of
// ChunkBytes every Interval (a browser's MediaRecorder at 128 kbit/s
// with a 250 ms timeslice makes 4 kB chunks).
type RecorderConfig struct {
	URL         string
	Token       string
	Recorders   int
	Duration    time.Duration
	Interval    time.Duration // default 250 ms
	ChunkBytes  int           // default 4000
	InsecureTLS bool
	// Progress, if set, gets a line a second.
	Progress func(string)
}

// RecorderReport is what RunRecorders measured.
type RecorderReport struct {
	Recorders int
	// AckMs is the time from sending a chunk to its acknowledgement: the
	// bytes fsynced and counted in the database.
	AckMs       Percentiles
	Chunks      int
	Failed      int
	Errors      []string
	MegaBytes   float64
	Server      ServerUsage
	WallSeconds float64
}

// webmHeader starts every take, as MediaRecorder's first chunk does; the
// server refuses a take that is not WebM or Ogg.
var webmHeader = []byte{0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x86, 0x81, 0x01, 0x42, 0xF7, 0x81, 0x01, 0x42, 0xF2, 0x81, 0x04, 0x42, 0xF3, 0x81, 0x08, 0x42, 0x82, 0x84, 'w', 'e', 'b', 'm', 0x42, 0x87, 0x81, 0x04, 0x42, 0x85, 0x81, 0x02}

// RunRecorders makes a channel with one song and a track per recorder,
// has every recorder upload a take in real time for cfg.Duration, finishes
// the takes and reports acknowledgement times and the server's CPU and
// memory (from /metrics).
func RunRecorders(ctx context.Context, cfg RecorderConfig) (*RecorderReport, error) {
	if cfg.Recorders < 1 {
		return nil, errors.New("loadtest: --recorders must be 1 or more")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 250 * time.Millisecond
	}
	if cfg.ChunkBytes <= 0 {
		cfg.ChunkBytes = 4000
	}
	hc := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Recorders + 4, TLSClientConfig: &tls.Config{InsecureSkipVerify: cfg.InsecureTLS}}}
	base := cfg.URL
	ch, err := createChannel(ctx, hc, base, cfg.Token, "studio load "+time.Now().Format("15:04:05"))
	if err != nil {
		return nil, err
	}
	api := func(method, path string, body []byte) (int, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, method, base+"/api/channels/"+url.PathEscape(ch)+"/studio"+path, bytes.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Authorization", "Bearer "+cfg.Token)
		resp, err := hc.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, b, err
	}
	id := func(method, path, body string) (string, error) {
		st, b, err := api(method, path, []byte(body))
		var v struct{ ID string }
		if err == nil && (st != http.StatusCreated || json.Unmarshal(b, &v) != nil) {
			err = fmt.Errorf("status %d: %s", st, b)
		}
		if err != nil {
			return "", fmt.Errorf("loadtest: %s %s: %w", method, path, err)
		}
		return v.ID, nil
	}
	song, err := id("POST", "/songs", `{"name":"load"}`)
	if err != nil {
		return nil, err
	}
	takes := make([]string, cfg.Recorders)
	for i := range takes {
		tr, err := id("POST", "/songs/"+song+"/tracks", fmt.Sprintf(`{"name":"recorder %d"}`, i))
		if err != nil {
			return nil, err
		}
		if takes[i], err = id("POST", "/tracks/"+tr+"/takes", `{"offsetMs":0}`); err != nil {
			return nil, err
		}
	}

	rep := &RecorderReport{Recorders: cfg.Recorders}
	before, _, errBefore := scrape(ctx, hc, base+"/metrics")
	var (
		mu    sync.Mutex
		acks  []float64
		wg    sync.WaitGroup
		start = time.Now()
	)
	payload := bytes.Repeat([]byte{0x55}, cfg.ChunkBytes)
	for i, take := range takes {
		wg.Go(func() {
			// Spread the recorders over one interval, as people do not
			// all press record in the same millisecond.
			tick := time.NewTicker(cfg.Interval)
			defer tick.Stop()
			time.Sleep(time.Duration(i) * cfg.Interval / time.Duration(len(takes)))
			for seq := 0; time.Since(start) < cfg.Duration; seq++ {
				data := payload
				if seq == 0 {
					data = append(append([]byte{}, webmHeader...), payload...)
				}
				t0 := time.Now()
				st, b, err := api("PUT", fmt.Sprintf("/takes/%s/chunks/%d?durationMs=%d", take, seq, (seq+1)*int(cfg.Interval/time.Millisecond)), data)
				took := time.Since(t0)
				mu.Lock()
				if err != nil || st != http.StatusOK {
					rep.Failed++
					if len(rep.Errors) < 10 {
						rep.Errors = append(rep.Errors, fmt.Sprintf("recorder %d chunk %d: %d %s %v", i, seq, st, bytes.TrimSpace(b), err))
					}
					mu.Unlock()
					return
				}
				acks = append(acks, ms(took))
				rep.Chunks++
				rep.MegaBytes += float64(len(data)) / 1e6
				mu.Unlock()
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		})
	}
	if cfg.Progress != nil {
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		t := time.NewTicker(time.Second)
	loop:
		for {
			select {
			case <-done:
				break loop
			case <-t.C:
				mu.Lock()
				cfg.Progress(fmt.Sprintf("%4.0fs  %d chunks acknowledged, %d failed", time.Since(start).Seconds(), rep.Chunks, rep.Failed))
				mu.Unlock()
			}
		}
		t.Stop()
	}
	wg.Wait()
	rep.WallSeconds = time.Since(start).Seconds()
	after, _, errAfter := scrape(ctx, hc, base+"/metrics")
	for _, take := range takes {
		api("POST", "/takes/"+take+"/finish", []byte(`{"durationMs":1}`))
	}
	rep.AckMs = percentiles(acks)
	if errBefore == nil && errAfter == nil {
		rep.Server = ServerUsage{
			Available:         true,
			CPUSeconds:        after["process_cpu_seconds_total"] - before["process_cpu_seconds_total"],
			ResidentMB:        after["process_resident_memory_bytes"] / 1e6,
			ResidentMBAtStart: before["process_resident_memory_bytes"] / 1e6,
		}
	}
	return rep, nil
}
