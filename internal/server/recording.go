package server

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/parley/parley/internal/account"
	"github.com/parley/parley/internal/recording"
	"github.com/parley/parley/internal/room"
	"github.com/parley/parley/internal/signaling"
	"github.com/parley/parley/internal/store"
	"github.com/parley/parley/internal/web"
)

// startRecordings opens the recordings directory and repairs what a
// crash interrupted, before any call can record.
func (s *Server) startRecordings() error {
	dir := s.cfg.RecordingDir
	if dir == "" {
		dir = filepath.Join(s.cfg.DataDir, "recordings")
	}
	svc, err := recording.New(recording.Config{Dir: dir, Quota: int64(s.cfg.RecordingQuotaMB) << 20}, s.log.With("part", "recording"))
	if err != nil {
		return fmt.Errorf("recordings: %w", err)
	}
	ids, err := svc.Recover()
	if err != nil {
		return fmt.Errorf("recordings: %w", err)
	}
	if len(ids) > 0 {
		s.log.Warn("repaired recordings interrupted by the last stop", "count", len(ids))
	}
	s.recordings = svc
	if ffmpeg := findFFmpeg(s.cfg.FFmpeg); ffmpeg != "" {
		s.composites = recording.NewCompositor(svc, ffmpeg)
		s.log.Info("recording composites made with ffmpeg", "ffmpeg", ffmpeg)
	} else {
		s.log.Info("ffmpeg not found (--ffmpeg): recordings get no composite file, only one file per participant and track")
	}
	return nil
}

// stopComposites kills a running composite (made again on request).
func (s *Server) stopComposites() {
	if s.composites != nil {
		s.composites.Close()
	}
}

// deleteRecordings removes a deleted channel's recordings.
func (s *Server) deleteRecordings(channelID string) {
	if err := s.recordings.DeleteChannel(channelID); err != nil {
		s.log.Error("delete a deleted channel's recordings", "channel_id", channelID, "err", err)
	}
}

// findFFmpeg resolves --ffmpeg ("" = ffmpeg on PATH, "none" = off).
func findFFmpeg(name string) string {
	if name == "none" {
		return ""
	}
	if name == "" {
		name = "ffmpeg"
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return ""
	}
	return p
}

// mayRecord: the channel's owner may record, and members when the owner
// allows it.
func (s *Server) mayRecord(ctx context.Context, u signaling.User, channelID string) error {
	if u.Grants != nil { // a join token's holder: its grant decides
		if !u.Grants.Record {
			return fmt.Errorf("%w (your join token does not allow recording)", room.ErrForbidden)
		}
		return nil
	}
	ch, err := s.accounts.Channel(ctx, store.User{ID: u.UserID, DisplayName: u.Name, Username: u.Username}, channelID)
	switch {
	case errors.Is(err, account.ErrForbidden), errors.Is(err, account.ErrNotFound):
		return fmt.Errorf("%w (you are not a member)", room.ErrForbidden)
	case err != nil:
		return err
	}
	if ch.OwnerID == u.UserID {
		return nil
	}
	ok, err := s.db.MembersMayRecord(ctx, channelID)
	if err != nil {
		return err
	}
	if !ok {
		return room.ErrForbidden
	}
	return nil
}

// webRecordings is what the web edge needs for the recording routes.
func (s *Server) webRecordings() *web.Recordings {
	return &web.Recordings{
		Service:             s.recordings,
		Composites:          s.composites,
		MayRecord:           s.mayRecord,
		MembersMayRecord:    s.db.MembersMayRecord,
		SetMembersMayRecord: s.db.SetMembersMayRecord,
	}
}

// recorder adapts the recording service to the room's Recorder.
type recorder struct {
	svc *recording.Service
	// finished, if set, is told when a recording ended (webhooks).
	finished func(channelID, id, state string, started time.Time)
}

func (r recorder) Start(channelID string, by signaling.User, onFail func(error)) (room.RecordingSession, error) {
	ss, err := r.svc.Start(channelID, recording.Person{UserID: by.UserID, Name: by.Name}, onFail)
	if err != nil {
		return nil, err
	}
	return &session{ss, channelID, r.finished}, nil
}

type session struct {
	*recording.Session
	channelID string
	finished  func(channelID, id, state string, started time.Time)
}

func (s session) Participant(id string, u signaling.User) {
	s.Session.Participant(recording.Person{ParticipantID: id, UserID: u.UserID, Name: u.Name})
}

func (s session) StartedAt() time.Time { return s.Session.StartedAt() }

func (s session) Stop(stopped bool, reason string) {
	state := recording.StateFinished
	if stopped {
		state = recording.StateStopped
	}
	s.Session.Stop(state, reason)
	if s.finished != nil {
		s.finished(s.channelID, s.Session.ID(), state, s.Session.StartedAt())
	}
}
