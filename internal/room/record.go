package room

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/parley/parley/internal/media"
	"github.com/parley/parley/internal/signal"
)

// Recorder starts server-side recordings (internal/recording, adapted by
// the server).
type Recorder interface {
	// Start begins a recording of channelID started by by. onFail is
	// called (from any goroutine) when the recording must stop by itself
	// (disk full, quota); the room then stops it and tells by why.
	Start(channelID string, by signal.User, onFail func(error)) (RecordingSession, error)
}

// RecordingSession is one running recording.
type RecordingSession interface {
	media.Recorder
	ID() string
	StartedAt() time.Time
	// Participant names a participant id in the recording's manifest.
	Participant(participantID string, u signal.User)
	// Stop finalises the files (it may take a moment: call it off the
	// room goroutine). stopped is true when the server stopped it, not
	// a person.
	Stop(stopped bool, reason string)
}

// MediaRecorder is the part of Media that taps a call's tracks for a
// recording (media.SFU.Record); a Media without it cannot record.
type MediaRecorder interface {
	Record(channelID string, rec media.Recorder) (stop func())
}

// Record's errors (their text is for the user).
var (
	ErrRecordingOff   = errors.New("room: this server does not record calls")
	ErrRecordingP2P   = errors.New("room: this channel is pinned to peer-to-peer, where media never reaches the server: the owner can set its mode to auto or sfu to record")
	ErrAlreadyRecords = errors.New("room: this call is already being recorded")
	ErrNotRecording   = errors.New("room: this call is not being recorded")
	ErrNoCall         = errors.New("room: nobody is in this channel's call: join it first, then record")
)

// recState is the room's running recording.
type recState struct {
	s     RecordingSession
	by    signal.User
	info  signal.Recording
	untap func()
}

// recordingMsg is the recording state for a socket that opened, if the
// call is being recorded.
func (r *room) recordingMsg() (signal.Message, bool) {
	if r.rec == nil {
		return signal.Message{}, false
	}
	info := r.rec.info
	return signal.Message{Type: signal.TypeRecording, Recording: &info}, true
}

// record starts or stops recording for user (authorized already).
func (r *room) record(user signal.User, action string) (signal.Recording, error) {
	if action == signal.RecordStop {
		if r.rec == nil {
			return signal.Recording{}, ErrNotRecording
		}
		name := user.Name
		if name == "" {
			name = user.Username
		}
		return r.stopRecording(false, "stopped by "+name), nil
	}
	if r.rec != nil {
		return r.rec.info, fmt.Errorf("%w (started by %s)", ErrAlreadyRecords, r.rec.by.Name)
	}
	mr, ok := r.cfg.Media.(MediaRecorder)
	if r.cfg.Recorder == nil || !ok {
		return signal.Recording{}, ErrRecordingOff
	}
	if r.mode == ModeP2P {
		return signal.Recording{}, ErrRecordingP2P
	}
	if len(r.participants) == 0 {
		return signal.Recording{}, ErrNoCall
	}
	var rs *recState
	s, err := r.cfg.Recorder.Start(r.channelID, user, func(err error) {
		r.post(func() { r.recordingFailed(rs, err) })
	})
	if err != nil {
		return signal.Recording{}, err
	}
	u := user
	rs = &recState{s: s, by: user, info: signal.Recording{Active: true, ID: s.ID(), By: &u, StartedAt: s.StartedAt().UTC()}}
	for _, c := range r.participants {
		s.Participant(c.p.ID, c.user)
	}
	r.rec = rs
	rs.untap = mr.Record(r.channelID, s)
	r.log.Info("recording started", "recording", s.ID(), "by", user.UserID)
	info := rs.info
	r.broadcast(nil, signal.Message{Type: signal.TypeRecording, Recording: &info})
	r.updateTopology() // recording needs the media on the server
	return info, nil
}

// stopRecording ends the running recording; the files are finalised in
// the background.
func (r *room) stopRecording(stopped bool, reason string) signal.Recording {
	rs := r.rec
	r.rec = nil
	untap, s := rs.untap, rs.s
	go func() {
		untap()
		s.Stop(stopped, reason)
	}()
	info := signal.Recording{Active: false, ID: rs.info.ID, By: rs.info.By, StartedAt: rs.info.StartedAt, Reason: reason}
	r.broadcast(nil, signal.Message{Type: signal.TypeRecording, Recording: &info})
	r.log.Info("recording stopped", "recording", info.ID, "reason", reason)
	r.updateTopology()
	return info
}

// recordingFailed stops a recording that cannot go on, and tells who
// started it why.
func (r *room) recordingFailed(rs *recState, err error) {
	if rs == nil || r.rec != rs {
		return
	}
	r.stopRecording(true, err.Error())
	for c := range r.clients {
		if c.user.UserID == rs.by.UserID {
			c.refuse(signal.CodeInternal, signal.TypeRecord, "recording stopped (the call goes on): %v", err)
		}
	}
}

// recordError turns Record's errors into the error message for a socket.
func recordError(action string, err error) *signal.Error {
	code := signal.CodeConflict
	switch {
	case errors.Is(err, ErrForbidden):
		code = signal.CodeForbidden
	case errors.Is(err, ErrRecordingOff), errors.Is(err, ErrRecordingP2P):
		code = signal.CodeInvalid
	case errors.Is(err, ErrAlreadyRecords), errors.Is(err, ErrNotRecording), errors.Is(err, ErrNoCall):
	default:
		code = signal.CodeInternal
	}
	return &signal.Error{Code: code, Ref: signal.TypeRecord, Message: err.Error()}
}

// ErrForbidden is what Config.MayRecord returns to refuse a user.
var ErrForbidden = errors.New("room: only the channel's owner may record its calls, unless the owner allows members to")

// Record starts (action signal.RecordStart) or stops recording
// channelID's call for user, who the caller has authorized. The call
// must be running (ErrNoCall).
func (m *Manager) Record(ctx context.Context, channelID string, user signal.User, action string) (signal.Recording, error) {
	type result struct {
		rec signal.Recording
		err error
	}
	done := make(chan result, 1)
	m.mu.Lock()
	r := m.rooms[channelID]
	m.mu.Unlock()
	if r == nil || !r.post(func() {
		rec, err := r.record(user, action)
		done <- result{rec, err}
	}) {
		return signal.Recording{}, ErrNoCall
	}
	select {
	case res := <-done:
		return res.rec, res.err
	case <-ctx.Done():
		return signal.Recording{}, ctx.Err()
	}
}

// Recording reports channelID's recording state (Active false if none).
func (m *Manager) Recording(ctx context.Context, channelID string) signal.Recording {
	done := make(chan signal.Recording, 1)
	m.mu.Lock()
	r := m.rooms[channelID]
	m.mu.Unlock()
	if r == nil || !r.post(func() {
		if r.rec != nil {
			done <- r.rec.info
		} else {
			done <- signal.Recording{}
		}
	}) {
		return signal.Recording{}
	}
	select {
	case res := <-done:
		return res
	case <-ctx.Done():
		return signal.Recording{}
	}
}
