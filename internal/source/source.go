// Package source reads media for Parley's native peers (parley join, parley
// p2p) from files or pipes and sends it in real time on pion tracks.
//
// Opus comes from Ogg (a file, looped, or a stream such as ffmpeg's stdout),
// VP8 from IVF files. Every file is checked when it is opened, so a wrong
// or corrupt file is reported before a call starts rather than halfway
// through it.
package source

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// Source is media that can be sent on a track.
type Source interface {
	// Codec is the capability to create the track with.
	Codec() webrtc.RTPCodecCapability
	// Run writes samples to track, paced in real time, until the media
	// ends (nil), ctx is done (ctx.Err()) or writing fails.
	Run(ctx context.Context, track *webrtc.TrackLocalStaticSample) error
}

// maxLag is how far sending may fall behind the media clock before the
// clock is moved instead: a pipe that stalled for a second should resume
// at normal pace, not send the second it owes in one burst.
const maxLag = 200 * time.Millisecond

// pace writes the samples next returns, each at its media time: the sum of
// the durations before it, counted from the first. Deadlines are absolute
// (start + media time), so timer lateness does not add up over a long call
// as it would with a sleep per sample. next returns io.EOF at the end.
func pace(ctx context.Context, track *webrtc.TrackLocalStaticSample, next func() (media.Sample, error)) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	start := time.Now()
	var at time.Duration // media time of the next sample
	for {
		s, err := next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		wait := time.Until(start.Add(at))
		switch {
		case wait > 0:
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-timer.C:
			}
		case wait < -maxLag:
			start = time.Now().Add(-at)
			fallthrough
		default:
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := track.WriteSample(s); err != nil {
			return fmt.Errorf("source: write sample: %w", err)
		}
		at += s.Duration
	}
}
