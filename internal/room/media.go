package room

import (
	"github.com/pion/webrtc/v4"

	"github.com/parley/parley/internal/media"
)

// Media is the media server (SFU) as a room drives it: just what the
// room needs, so that it can be tested alone against a fake. SFUMedia
// adapts a *media.SFU (Go has no covariant results, so the SFU's
// concrete *media.Peer and *media.Viewer need the small adapter).
type Media interface {
	// Join gives a participant its SFU connections (media.SFU.Join).
	Join(channelID, participantID string, re media.RoomEvents, pe media.PeerEvents) (MediaPeer, error)
	// JoinPublisher adds a participant that only sends: a WHIP
	// publisher (media.SFU.JoinPublisher).
	JoinPublisher(channelID, participantID string, re media.RoomEvents, pe media.PeerEvents) (MediaPeer, error)
	// View answers a WHEP player's offer (media.SFU.View).
	View(channelID, participantID, offer string) (MediaViewer, string, error)
}

// MediaPeer is one participant's SFU connections (*media.Peer). Its
// methods may be called from any goroutine.
type MediaPeer interface {
	Publish(offer string, sources map[string]string) (answer string, err error)
	AnswerSubscriber(answer string) error
	AddCandidate(pc string, c webrtc.ICECandidateInit) error
	RestartICE(ufrag, pwd string, cands []webrtc.ICECandidateInit) (media.ICEParams, error)
	SetLayout(tiles []media.Tile)
	SetSending(audio, video, screen bool)
	// Done is closed once the peer has closed, by Close or by itself
	// (its connection failed).
	Done() <-chan struct{}
	Close()
}

// MediaViewer is a WHEP player's connection (*media.Viewer).
type MediaViewer interface {
	Participant() string
	AddCandidate(c webrtc.ICECandidateInit) error
	RestartICE(ufrag, pwd string, cands []webrtc.ICECandidateInit) (media.ICEParams, error)
	Done() <-chan struct{}
	Close()
}

// SFUMedia is s as the room's Media; nil if s is nil (no media server).
func SFUMedia(s *media.SFU) Media {
	if s == nil {
		return nil
	}
	return sfuMedia{s}
}

type sfuMedia struct{ sfu *media.SFU }

func (m sfuMedia) Join(channelID, participantID string, re media.RoomEvents, pe media.PeerEvents) (MediaPeer, error) {
	p, err := m.sfu.Join(channelID, participantID, re, pe)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return p, nil
}

func (m sfuMedia) JoinPublisher(channelID, participantID string, re media.RoomEvents, pe media.PeerEvents) (MediaPeer, error) {
	p, err := m.sfu.JoinPublisher(channelID, participantID, re, pe)
	if err != nil {
		return nil, err
	}
	return p, nil
}

func (m sfuMedia) View(channelID, participantID, offer string) (MediaViewer, string, error) {
	v, answer, err := m.sfu.View(channelID, participantID, offer)
	if err != nil {
		return nil, "", err
	}
	return v, answer, nil
}

// Record taps channelID's tracks for a recording (media.SFU.Record).
func (m sfuMedia) Record(channelID string, rec media.Recorder) (stop func()) {
	return m.sfu.Record(channelID, rec)
}
