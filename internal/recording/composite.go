package recording

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// CompositeName is the composite's file name in a recording's directory.
const CompositeName = "composite.mp4"

// Composite states (Composite.State).
const (
	CompositeQueued  = "queued"
	CompositeRunning = "running"
	CompositeDone    = "done"
	CompositeFailed  = "failed"
)

// ErrNoFFmpeg: composites need ffmpeg, which the server does not have.
var ErrNoFFmpeg = errors.New("recording: composites need ffmpeg on the server (--ffmpeg); ask its operator")

// Composite is the state of a recording's composite file: one MP4 with
// every video in a grid and the audio mixed, made by ffmpeg after the
// call.
type Composite struct {
	State string `json:"state"`
	// Progress is 0..1 while running.
	Progress float64 `json:"progress"`
	Name     string  `json:"name,omitempty"` // the file, once done
	Error    string  `json:"error,omitempty"`
}

// Compositor runs ffmpeg for composites, one at a time, at low priority.
type Compositor struct {
	svc    *Service
	ffmpeg string
	jobs   chan compositeJob
	stop   context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	state map[string]*Composite // by channel/recording, while queued or running
}

type compositeJob struct{ channelID, id string }

// NewCompositor starts the composite worker; ffmpeg is the program's path.
func NewCompositor(svc *Service, ffmpeg string) *Compositor {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Compositor{svc: svc, ffmpeg: ffmpeg, jobs: make(chan compositeJob, 64), stop: cancel,
		done: make(chan struct{}), state: map[string]*Composite{}}
	go c.run(ctx)
	return c
}

// Close stops the worker (a running ffmpeg is killed; its partial file
// removed).
func (c *Compositor) Close() {
	c.stop()
	<-c.done
}

// Request queues a composite of a finished recording; a recording already
// queued, running or done is left as it is.
func (c *Compositor) Request(channelID, id string) (Composite, error) {
	m, err := c.svc.Get(channelID, id)
	if err != nil {
		return Composite{}, err
	}
	if m.State == StateRecording {
		return Composite{}, ErrRecording
	}
	if m.Composite != nil && m.Composite.State == CompositeDone {
		return *m.Composite, nil
	}
	key := channelID + "/" + id
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.state[key]; ok {
		return *st, nil
	}
	st := &Composite{State: CompositeQueued}
	select {
	case c.jobs <- compositeJob{channelID, id}:
	default:
		return Composite{}, errors.New("recording: too many composites waiting; try again later")
	}
	c.state[key] = st
	return *st, nil
}

// Status is a composite's state: queued or running (from memory), else
// what the manifest says (nil: never asked for).
func (c *Compositor) Status(channelID, id string, m Manifest) *Composite {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.state[channelID+"/"+id]; ok {
		cp := *st
		return &cp
	}
	return m.Composite
}

func (c *Compositor) run(ctx context.Context) {
	defer close(c.done)
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-c.jobs:
			key := j.channelID + "/" + j.id
			err := c.make(ctx, j, func(p float64) {
				c.mu.Lock()
				c.state[key].State, c.state[key].Progress = CompositeRunning, p
				c.mu.Unlock()
			})
			final := Composite{State: CompositeDone, Progress: 1, Name: CompositeName}
			if err != nil {
				final = Composite{State: CompositeFailed, Error: err.Error()}
				c.svc.log.Warn("composite failed", "channel_id", j.channelID, "recording", j.id, "err", err)
			}
			if err := c.svc.setComposite(j.channelID, j.id, final); err != nil {
				c.svc.log.Warn("composite: manifest", "err", err)
			}
			c.mu.Lock()
			delete(c.state, key)
			c.mu.Unlock()
		}
	}
}

// make runs ffmpeg for one recording, reporting progress (0..1).
func (c *Compositor) make(ctx context.Context, j compositeJob, progress func(float64)) error {
	m, err := c.svc.Get(j.channelID, j.id)
	if err != nil {
		return err
	}
	dir, _ := c.svc.dir(j.channelID, j.id)
	args, err := compositeArgs(dir, m)
	if err != nil {
		return err
	}
	out := filepath.Join(dir, CompositeName)
	tmp := filepath.Join(dir, "composite.tmp.mp4")
	args = append(args, "-progress", "pipe:1", "-nostats", "-y", tmp)
	cmd := exec.CommandContext(ctx, c.ffmpeg, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr strings.Builder
	cmd.Stderr = &limitedWriter{w: &stderr, n: 4096}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start ffmpeg: %w", err)
	}
	lowerPriority(cmd.Process.Pid) // composing must not starve the calls
	total := float64(max(m.DurationMS, 1)) * 1000
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "out_time_us="); ok {
			if us, err := strconv.ParseFloat(v, 64); err == nil {
				progress(math.Min(1, math.Max(0, us/total)))
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("ffmpeg: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	if fi, err := os.Stat(tmp); err == nil {
		c.svc.used.Add(fi.Size())
	}
	return os.Rename(tmp, out)
}

// compositeArgs builds ffmpeg's inputs and filter graph: every video
// scaled into a 640×360 cell of a grid, padded with black before its file
// starts and after it ends; every audio file delayed to its place and
// mixed; the whole as long as the recording.
func compositeArgs(dir string, m Manifest) ([]string, error) {
	if len(m.Files) == 0 {
		return nil, errors.New("the recording has no files")
	}
	const cw, ch = 640, 360
	dur := float64(m.DurationMS) / 1000
	var args, filters, vids, auds []string
	for i, f := range m.Files {
		args = append(args, "-i", filepath.Join(dir, f.Name))
		start := float64(max(f.StartMS, 0)) / 1000
		switch f.Kind {
		case "video":
			l := fmt.Sprintf("v%d", len(vids))
			filters = append(filters, fmt.Sprintf("[%d:v]setpts=PTS-STARTPTS,fps=25,scale=%d:%d:force_original_aspect_ratio=decrease,pad=%d:%d:(ow-iw)/2:(oh-ih)/2,setsar=1,tpad=start_duration=%.3f:stop_mode=add:stop_duration=%.3f,trim=duration=%.3f[%s]",
				i, cw, ch, cw, ch, start, dur, dur, l))
			vids = append(vids, "["+l+"]")
		case "audio":
			l := fmt.Sprintf("a%d", len(auds))
			filters = append(filters, fmt.Sprintf("[%d:a]aresample=48000,adelay=delays=%d:all=1[%s]", i, max(f.StartMS, 0), l))
			auds = append(auds, "["+l+"]")
		}
	}
	switch n := len(vids); {
	case n == 0:
		args = append(args, "-f", "lavfi", "-i", fmt.Sprintf("color=c=black:s=%dx%d:r=25:d=%.3f", cw, ch, dur))
		filters = append(filters, fmt.Sprintf("[%d:v]null[vout]", len(m.Files)))
	case n == 1:
		filters = append(filters, vids[0]+"null[vout]")
	default:
		cols := int(math.Ceil(math.Sqrt(float64(n))))
		var layout []string
		for i := range n {
			layout = append(layout, fmt.Sprintf("%d_%d", (i%cols)*cw, (i/cols)*ch))
		}
		filters = append(filters, fmt.Sprintf("%sxstack=inputs=%d:layout=%s:fill=black[vout]", strings.Join(vids, ""), n, strings.Join(layout, "|")))
	}
	maps := []string{"-map", "[vout]"}
	if len(auds) > 0 {
		filters = append(filters, fmt.Sprintf("%samix=inputs=%d:duration=longest:normalize=0,apad,atrim=duration=%.3f[aout]", strings.Join(auds, ""), len(auds), dur))
		maps = append(maps, "-map", "[aout]")
	}
	args = append(args, "-filter_complex", strings.Join(filters, ";"))
	args = append(args, maps...)
	args = append(args, "-c:v", "libx264", "-preset", "veryfast", "-crf", "28", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "128k", "-t", fmt.Sprintf("%.3f", dur), "-movflags", "+faststart")
	return args, nil
}

// setComposite records a composite's final state in the manifest.
func (s *Service) setComposite(channelID, id string, c Composite) error {
	dir, err := s.dir(channelID, id)
	if err != nil {
		return err
	}
	m, err := readManifest(dir)
	if err != nil {
		return err
	}
	m.Composite = &c
	return writeManifest(dir, &m)
}

// limitedWriter keeps the first n bytes (ffmpeg's error output).
type limitedWriter struct {
	w *strings.Builder
	n int
}

func (l *limitedWriter) Write(b []byte) (int, error) {
	if room := l.n - l.w.Len(); room > 0 {
		l.w.Write(b[:min(len(b), room)])
	}
	return len(b), nil
}
