package room

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/parley/parley/internal/media"
	"github.com/parley/parley/internal/signaling"
)

// Recorder starts server-side recordings (internal/recording, adapted by
// the server).
type Recorder interface {
	// Start begins a recording of channelID started by by. onFail is
	// called (from any goroutine) when the recording must stop by itself
	// (disk full, quota); the room then stops it and tells by why.
	Start(channelID string, by signaling.User, onFail func(error)) (RecordingSession, error)
}

// RecordingSession is one running recording.
type RecordingSession interface {
	media.Recorder
	ID() string
	StartedAt() time.Time
	// Participant names a participant id in the recording's manifest.
	Participant(participantID string, u signaling.User)
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
	by    signaling.User
	info  signaling.Recording
	untap func()
}

// recordingMsg is the recording state for a socket that opened, if the
// call is being recorded.
func (r *call) recordingMsg() (signaling.Message, bool) {
	if r.rec == nil {
		return signaling.Message{}, false
	}
	info := r.rec.info
	return signaling.Message{Type: signaling.TypeRecording, Recording: &info}, true
}

// record starts or stops recording for user (authorized already).
func (r *call) record(user signaling.User, action string) (signaling.Recording, error) {
	if action == signaling.RecordStop {
		if r.rec == nil {
			return signaling.Recording{}, ErrNotRecording
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
		return signaling.Recording{}, ErrRecordingOff
	}
	if r.mode == ModeP2P {
		return signaling.Recording{}, ErrRecordingP2P
	}
	if len(r.participants) == 0 {
		return signaling.Recording{}, ErrNoCall
	}
	var rs *recState
	s, err := r.cfg.Recorder.Start(r.channelID, user, func(err error) {
		r.post(func() { r.recordingFailed(rs, err) })
	})
	if err != nil {
		return signaling.Recording{}, err
	}
	u := user
	rs = &recState{s: s, by: user, info: signaling.Recording{Active: true, ID: s.ID(), By: &u, StartedAt: s.StartedAt().UTC()}}
	for _, c := range r.participants {
		s.Participant(c.p.ID, c.user)
	}
	r.rec = rs
	rs.untap = mr.Record(r.channelID, s)
	r.log.Info("recording started", "recording", s.ID(), "by", user.UserID)
	info := rs.info
	r.broadcast(nil, signaling.Message{Type: signaling.TypeRecording, Recording: &info})
	r.updateTopology() // recording needs the media on the server
	return info, nil
}

// stopRecording ends the running recording; the files are finalised in
// the background.
func (r *call) stopRecording(stopped bool, reason string) signaling.Recording {
	rs := r.rec
	r.rec = nil
	untap, s := rs.untap, rs.s
	go func() {
		untap()
		s.Stop(stopped, reason)
	}()
	info := signaling.Recording{Active: false, ID: rs.info.ID, By: rs.info.By, StartedAt: rs.info.StartedAt, Reason: reason}
	r.broadcast(nil, signaling.Message{Type: signaling.TypeRecording, Recording: &info})
	r.log.Info("recording stopped", "recording", info.ID, "reason", reason)
	r.updateTopology()
	return info
}

// recordingFailed stops a recording that cannot go on, and tells who
// started it why.
func (r *call) recordingFailed(rs *recState, err error) {
	if rs == nil || r.rec != rs {
		return
	}
	r.stopRecording(true, err.Error())
	for c := range r.clients {
		if c.user.UserID == rs.by.UserID {
			c.refuse(signaling.CodeInternal, signaling.TypeRecord, "recording stopped (the call goes on): %v", err)
		}
	}
}

// recordError turns Record's errors into the error message for a socket.
func recordError(action string, err error) *signaling.Error {
	code := signaling.CodeConflict
	switch {
	case errors.Is(err, ErrForbidden):
		code = signaling.CodeForbidden
	case errors.Is(err, ErrRecordingOff), errors.Is(err, ErrRecordingP2P):
		code = signaling.CodeInvalid
	case errors.Is(err, ErrAlreadyRecords), errors.Is(err, ErrNotRecording), errors.Is(err, ErrNoCall):
	default:
		code = signaling.CodeInternal
	}
	return &signaling.Error{Code: code, Ref: signaling.TypeRecord, Message: err.Error()}
}

// ErrForbidden is what Config.MayRecord returns to refuse a user.
var ErrForbidden = errors.New("room: only the channel's owner may record its calls, unless the owner allows members to")

// Record starts (action signaling.RecordStart) or stops recording
// channelID's call for user, who the caller has authorized. The call
// must be running (ErrNoCall).
func (m *Manager) Record(ctx context.Context, channelID string, user signaling.User, action string) (signaling.Recording, error) {
	type result struct {
		rec signaling.Recording
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
		return signaling.Recording{}, ErrNoCall
	}
	select {
	case res := <-done:
		return res.rec, res.err
	case <-ctx.Done():
		return signaling.Recording{}, ctx.Err()
	}
}

// Recording reports channelID's recording state (Active false if none).
func (m *Manager) Recording(ctx context.Context, channelID string) signaling.Recording {
	done := make(chan signaling.Recording, 1)
	m.mu.Lock()
	r := m.rooms[channelID]
	m.mu.Unlock()
	if r == nil || !r.post(func() {
		if r.rec != nil {
			done <- r.rec.info
		} else {
			done <- signaling.Recording{}
		}
	}) {
		return signaling.Recording{}
	}
	select {
	case res := <-done:
		return res
	case <-ctx.Done():
		return signaling.Recording{}
	}
}
