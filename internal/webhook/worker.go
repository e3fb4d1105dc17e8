package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/parley/parley/internal/store"
)

// UserAgent is sent with every delivery.
const UserAgent = "Parley-Webhook/1"

// maxErrorText bounds the error kept with a failed attempt.
const maxErrorText = 300

// Backoff is how long to wait after the attempts-th failed attempt
// (1, 2, ...): min doubled per earlier failure, capped at max, then
// "equal jitter": a random point in its upper half, so that many
// webhooks failing together do not retry in step.
func Backoff(attempts int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 1; i < attempts && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + rand.N(d/2+1)
}

// Run delivers due events until ctx ends: it claims due rows (at most
// one per webhook, the oldest pending), POSTs them, Workers at a time,
// and records each answer. It returns once every delivery it started has
// finished or been abandoned to ctx; an abandoned one is sent again after
// its lease, so nothing is lost.
func (s *Service) Run(ctx context.Context) {
	client := &http.Client{
		Timeout: s.cfg.Timeout,
		Transport: &http.Transport{
			Proxy:                 nil, // a proxy would dial for us, past the address check
			DialContext:           guardedDialer(s.cfg.AllowPrivate, s.cfg.Timeout),
			TLSHandshakeTimeout:   s.cfg.Timeout,
			ResponseHeaderTimeout: s.cfg.Timeout,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       time.Minute,
		},
		// A redirect is an answer like any other non-2xx: following it
		// could lead to an address the URL check never saw.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()
	// The lease outlasts an attempt (bounded by Timeout) and the writing
	// of its outcome, so a row is never sent twice at once; another
	// worker takes it only if this one died (or lost its database).
	lease := 2*s.cfg.Timeout + 5*time.Second
	t := time.NewTicker(s.cfg.Poll)
	defer t.Stop()
	lastPrune := time.Time{}
	for {
		for ctx.Err() == nil {
			ds, err := s.db.ClaimDeliveries(ctx, time.Now(), lease, s.cfg.Workers)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("claim webhook deliveries", "err", err)
				}
				break
			}
			if len(ds) == 0 {
				break
			}
			var wg sync.WaitGroup
			for _, d := range ds {
				wg.Go(func() { s.deliver(ctx, client, d) })
			}
			wg.Wait()
		}
		if time.Since(lastPrune) > time.Hour {
			lastPrune = time.Now()
			if n, err := s.db.PruneDeliveries(ctx, time.Now().Add(-s.cfg.Keep)); err != nil && ctx.Err() == nil {
				s.log.Warn("prune webhook deliveries", "err", err)
			} else if n > 0 {
				s.log.Info("pruned old webhook deliveries", "count", n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-t.C:
		}
	}
}

// deliver makes one attempt and records its outcome.
func (s *Service) deliver(ctx context.Context, client *http.Client, d store.Delivery) {
	log := s.log.With("webhook_id", d.WebhookID, "delivery_id", d.ID, "event_id", d.EventID, "event", d.EventType)
	status, err := s.post(ctx, client, d)
	if ctx.Err() != nil {
		return // stopping: the lease runs out and the row is sent again
	}
	// The outcome is recorded even if the server is stopping meanwhile.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	now := time.Now()
	if err == nil {
		if err := s.db.DeliverySucceeded(rctx, d.ID, status, now); err != nil {
			log.Warn("record webhook delivery", "err", err)
		}
		log.Debug("webhook delivered", "status", status, "attempts", d.Attempts)
		return
	}
	why := err.Error()
	if len(why) > maxErrorText {
		why = why[:maxErrorText]
	}
	next := now.Add(Backoff(d.Attempts, s.cfg.RetryMin, s.cfg.RetryMax))
	giveUp := !next.Before(d.ExpiresAt)
	if giveUp {
		log.Warn("webhook delivery given up", "attempts", d.Attempts, "status", status, "err", err)
	} else {
		log.Info("webhook delivery failed, will retry", "attempts", d.Attempts, "status", status, "err", err, "retry_in", next.Sub(now).Round(time.Millisecond))
	}
	if err := s.db.DeliveryFailed(rctx, d.ID, status, why, next, giveUp, now); err != nil {
		log.Warn("record webhook delivery", "err", err)
	}
}

// post sends d once: the status code, and an error unless it was 2xx.
func (s *Service) post(ctx context.Context, client *http.Client, d store.Delivery) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(d.Payload))
	if err != nil {
		return 0, fmt.Errorf("bad URL: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(EventIDHeader, d.EventID)
	req.Header.Set(EventTypeHeader, d.EventType)
	req.Header.Set(DeliveryHeader, d.ID)
	req.Header.Set(SignatureHeader, Sign(d.Secret, time.Now(), d.Payload))
	resp, err := client.Do(req)
	if err != nil {
		var ue interface{ Timeout() bool }
		if errors.As(err, &ue) && ue.Timeout() {
			return 0, fmt.Errorf("no answer within %v", s.cfg.Timeout)
		}
		if errors.Is(err, ErrPrivateAddress) {
			return 0, fmt.Errorf("refused to connect: %w", ErrPrivateAddress)
		}
		return 0, fmt.Errorf("connection failed: %w", err)
	}
	defer resp.Body.Close()
	// Read a little so the connection can be reused; the body means nothing.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("answered %s", resp.Status)
	}
	return resp.StatusCode, nil
}
