// Package recording records calls on the server: every participant's
// microphone, camera and screen share, each in a file of its own as the
// SFU receives it, without transcoding (Opus in Ogg, VP8/VP9 in WebM,
// H.264 in Matroska), plus a manifest (manifest.json) that places every
// file on the recording's timeline.
//
// # Driving it
//
// The room starts a recording with Service.Start and hands the Session to
// media.SFU.Record (a Session is a media.Recorder): each published track
// becomes a trackWriter, fed by the forwarding goroutine through a
// bounded queue (WriteRTP copies the packet into a preallocated buffer and
// returns; when the queue is full the packet is dropped and counted, so a
// slow disk never slows forwarding) and written by a goroutine of its own.
// Session.Stop finalises the files and the manifest. A disk error or the
// quota stops the recording by itself (Session's OnFail), not the call.
//
// Layout on disk: DIR/CHANNEL/RECORDING/manifest.json and its files. A
// manifest still saying "recording" at startup belongs to a recording a
// crash interrupted: Service.Recover repairs its files and marks it
// "interrupted".
package recording

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley/parley/internal/media"
)

// States of a recording (Manifest.State).
const (
	StateRecording   = "recording"   // in progress (or the server died: see Recover)
	StateFinished    = "finished"    // stopped by someone
	StateStopped     = "stopped"     // stopped by the server: quota, full disk, the call ended
	StateInterrupted = "interrupted" // the server died while recording; files repaired at startup
)

// Errors of the service; their text is meant for the user.
var (
	ErrNotFound  = errors.New("recording: no such recording or file")
	ErrQuota     = errors.New("recording: the server's recording storage (--recording-quota) is full; delete old recordings")
	ErrDiskFull  = errors.New("recording: the server's disk is full; recording stopped")
	ErrStopped   = errors.New("recording: the recording has stopped")
	ErrBadName   = errors.New("recording: bad recording or file name")
	ErrRecording = errors.New("recording: the recording is still running; stop it first")
)

// Config of the Service.
type Config struct {
	// Dir holds the recordings (created if missing).
	Dir string
	// Quota bounds the bytes all recordings may take; 0 = no limit.
	Quota int64
	// QueuePackets is each file's queue, in packets (default 1024: about
	// a second of 720p video). Beyond it packets are dropped and counted.
	QueuePackets int
	// Now is the clock (tests); nil = time.Now.
	Now func() time.Time
}

// Person is someone in a recording.
type Person struct {
	ParticipantID string `json:"participant_id,omitempty"`
	UserID        string `json:"user_id"`
	Name          string `json:"name"`
}

// File is one track's file in a manifest.
type File struct {
	Name        string `json:"name"`
	Participant string `json:"participant_id"`
	UserID      string `json:"user_id,omitempty"`
	UserName    string `json:"user_name,omitempty"`
	Source      string `json:"source"` // microphone, camera or screen
	Kind        string `json:"kind"`   // audio or video
	Codec       string `json:"codec"`
	// StartMS is when the file's first frame was sampled, in
	// milliseconds after the recording's StartedAt (the recording's
	// timeline). Sync says how it was found: "sender-report" (the
	// publisher's RTCP sender report mapped the RTP time to wall-clock
	// time) or "arrival" (no sender report came).
	StartMS    int64  `json:"start_ms"`
	Sync       string `json:"sync"`
	DurationMS int64  `json:"duration_ms"`
	Packets    uint64 `json:"packets"`
	// Dropped counts packets lost because the disk did not keep up (the
	// file has a gap there).
	Dropped uint64 `json:"dropped"`
	Bytes   int64  `json:"bytes"`
	// LayerSwitches counts changes of the recorded simulcast layer.
	LayerSwitches int  `json:"layer_switches,omitempty"`
	Repaired      bool `json:"repaired,omitempty"`
}

// Manifest describes a recording (manifest.json).
type Manifest struct {
	ID           string     `json:"id"`
	ChannelID    string     `json:"channel_id"`
	StartedBy    Person     `json:"started_by"`
	StartedAt    time.Time  `json:"started_at"`
	EndedAt      *time.Time `json:"ended_at,omitempty"`
	State        string     `json:"state"`
	StopReason   string     `json:"stop_reason,omitempty"`
	DurationMS   int64      `json:"duration_ms"`
	Participants []Person   `json:"participants"`
	Files        []File     `json:"files"`
	// Composite is the composite file's state, once asked for.
	Composite *Composite `json:"composite,omitempty"`
}

// Service keeps the recordings of every channel.
type Service struct {
	cfg  Config
	log  *slog.Logger
	used atomic.Int64 // bytes under Dir

	mu     sync.Mutex
	active map[string]*Session // by channel
}

// New opens (creates) cfg.Dir. Call Recover before recording.
func New(cfg Config, log *slog.Logger) (*Service, error) {
	if cfg.Dir == "" {
		return nil, errors.New("recording: no directory")
	}
	if cfg.QueuePackets <= 0 {
		cfg.QueuePackets = 1024
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("recording: make %s: %w", cfg.Dir, err)
	}
	s := &Service{cfg: cfg, log: log, active: map[string]*Session{}}
	s.used.Store(dirSize(cfg.Dir))
	return s, nil
}

func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// Used is the bytes the recordings take.
func (s *Service) Used() int64 { return s.used.Load() }

var idRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

// Start begins recording channelID, started by by. onFail is called
// (from a writer goroutine) if the recording has to stop by itself: the
// disk is full or the quota reached; the caller then stops it.
func (s *Service) Start(channelID string, by Person, onFail func(error)) (*Session, error) {
	if !idRE.MatchString(channelID) {
		return nil, ErrBadName
	}
	if s.cfg.Quota > 0 && s.cfg.Quota-s.used.Load() < min(1<<20, s.cfg.Quota/10) {
		return nil, ErrQuota // not even room for a short recording
	}
	id := newID()
	dir := filepath.Join(s.cfg.Dir, channelID, id)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("recording: make %s: %w", dir, err)
	}
	ss := &Session{
		svc: s, dir: dir, onFail: onFail, log: s.log.With("channel_id", channelID, "recording", id),
		people: map[string]Person{}, names: map[string]int{}, empty: map[int]bool{},
		m: Manifest{ID: id, ChannelID: channelID, StartedBy: by, StartedAt: s.cfg.Now(), State: StateRecording,
			Participants: []Person{}, Files: []File{}},
	}
	ss.mu.Lock()
	err := ss.saveLocked()
	ss.mu.Unlock()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.mu.Lock()
	s.active[channelID] = ss
	s.mu.Unlock()
	ss.log.Info("recording started", "by", by.UserID)
	return ss, nil
}

// addBytes counts bytes written and reports whether the quota allows
// more.
func (s *Service) addBytes(n int64) bool {
	u := s.used.Add(n)
	return s.cfg.Quota <= 0 || u <= s.cfg.Quota
}

// List returns channelID's recordings, newest first.
func (s *Service) List(channelID string) ([]Manifest, error) {
	if !idRE.MatchString(channelID) {
		return nil, ErrBadName
	}
	ents, err := os.ReadDir(filepath.Join(s.cfg.Dir, channelID))
	if errors.Is(err, fs.ErrNotExist) {
		return []Manifest{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("recording: list: %w", err)
	}
	out := []Manifest{}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		m, err := readManifest(filepath.Join(s.cfg.Dir, channelID, e.Name()))
		if err != nil {
			continue // half made, or being deleted
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StartedAt.After(out[j].StartedAt) })
	return out, nil
}

// Get returns one recording's manifest.
func (s *Service) Get(channelID, id string) (Manifest, error) {
	dir, err := s.dir(channelID, id)
	if err != nil {
		return Manifest{}, err
	}
	return readManifest(dir)
}

func (s *Service) dir(channelID, id string) (string, error) {
	if !idRE.MatchString(channelID) || !idRE.MatchString(id) {
		return "", ErrNotFound
	}
	return filepath.Join(s.cfg.Dir, channelID, id), nil
}

// Open opens one file of a recording (a name listed in its manifest).
func (s *Service) Open(channelID, id, name string) (*os.File, error) {
	m, err := s.Get(channelID, id)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(m.Files)+1)
	for _, f := range m.Files {
		names = append(names, f.Name)
	}
	if m.Composite != nil && m.Composite.State == CompositeDone {
		names = append(names, CompositeName)
	}
	for _, f := range names {
		if f == name {
			dir, _ := s.dir(channelID, id)
			fh, err := os.Open(filepath.Join(dir, name))
			if err != nil {
				return nil, ErrNotFound
			}
			return fh, nil
		}
	}
	return nil, ErrNotFound
}

// Delete removes a finished recording and its files.
func (s *Service) Delete(channelID, id string) error {
	dir, err := s.dir(channelID, id)
	if err != nil {
		return err
	}
	m, err := readManifest(dir)
	if err != nil {
		return err
	}
	if m.State == StateRecording {
		return ErrRecording
	}
	n := dirSize(dir)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("recording: delete: %w", err)
	}
	s.used.Add(-n)
	return nil
}

// StopAll stops every running recording (the server is stopping), so
// their files and manifests are final before the process exits.
func (s *Service) StopAll(reason string) {
	s.mu.Lock()
	var all []*Session
	for _, ss := range s.active {
		all = append(all, ss)
	}
	s.mu.Unlock()
	for _, ss := range all {
		ss.Stop(StateStopped, reason)
	}
}

// DeleteChannel removes every recording of a deleted channel, stopping
// one that is running.
func (s *Service) DeleteChannel(channelID string) error {
	if !idRE.MatchString(channelID) {
		return ErrBadName
	}
	s.mu.Lock()
	ss := s.active[channelID]
	s.mu.Unlock()
	if ss != nil {
		ss.Stop(StateStopped, "the channel was deleted")
	}
	dir := filepath.Join(s.cfg.Dir, channelID)
	n := dirSize(dir)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("recording: delete channel: %w", err)
	}
	s.used.Add(-n)
	return nil
}

func readManifest(dir string) (Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return Manifest{}, ErrNotFound
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return Manifest{}, fmt.Errorf("recording: %s: %w", dir, err)
	}
	return m, nil
}

// writeManifest replaces dir's manifest atomically (a crash leaves the
// old one or the new one, never half of one).
func writeManifest(dir string, m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "manifest.json.tmp")
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return fmt.Errorf("recording: write manifest: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "manifest.json")); err != nil {
		return fmt.Errorf("recording: write manifest: %w", err)
	}
	return nil
}

// Session is one running recording; it is the media.Recorder handed to
// media.SFU.Record.
type Session struct {
	svc    *Service
	dir    string
	log    *slog.Logger
	onFail func(error)

	mu      sync.Mutex
	m       Manifest
	people  map[string]Person // by participant id
	names   map[string]int    // file name stems used
	writers []*trackWriter
	empty   map[int]bool // files (by index) that got no media
	stopped bool
	failed  bool
}

// ID is the recording's id.
func (ss *Session) ID() string { return ss.m.ID }

// StartedAt is when the recording began.
func (ss *Session) StartedAt() time.Time { return ss.m.StartedAt }

// Participant records who a participant id is (call it for everyone in
// the call at Start and for everyone who joins while recording).
func (ss *Session) Participant(p Person) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if _, ok := ss.people[p.ParticipantID]; ok || ss.stopped {
		return
	}
	ss.people[p.ParticipantID] = p
	ss.m.Participants = append(ss.m.Participants, p)
	if err := ss.saveLocked(); err != nil {
		ss.log.Warn("manifest", "err", err)
	}
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Track implements media.Recorder: a file for the track.
func (ss *Session) Track(t media.TrackInfo) media.TrackSink {
	var ext string
	switch strings.ToLower(t.MimeType) {
	case "audio/opus":
		ext = ".ogg"
	case "video/vp8", "video/vp9":
		ext = ".webm"
	case "video/h264":
		ext = ".mkv" // Matroska: WebM has no H.264
	default:
		ss.log.Warn("not recording a track: codec not supported", "codec", t.MimeType, "track", t.TrackID)
		return nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.stopped {
		return nil
	}
	who := ss.people[t.Participant]
	stem := unsafeChars.ReplaceAllString(t.Participant+"-"+t.Source+"-"+t.Kind, "_")
	ss.names[stem]++
	name := stem + ext
	if n := ss.names[stem]; n > 1 {
		name = fmt.Sprintf("%s-%d%s", stem, n, ext)
	}
	w, err := newTrackWriter(ss, filepath.Join(ss.dir, name), t)
	if err != nil {
		ss.log.Error("recording a track", "track", t.TrackID, "err", err)
		return nil
	}
	w.idx = len(ss.m.Files)
	ss.m.Files = append(ss.m.Files, File{Name: name, Participant: t.Participant, UserID: who.UserID, UserName: who.Name,
		Source: t.Source, Kind: t.Kind, Codec: t.MimeType, Sync: "arrival"})
	ss.writers = append(ss.writers, w)
	if err := ss.saveLocked(); err != nil {
		ss.log.Warn("manifest", "err", err)
	}
	return w
}

// fileDone takes a writer's final figures into the manifest.
func (ss *Session) fileDone(w *trackWriter, f func(*File)) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	f(&ss.m.Files[w.idx])
	if err := ss.saveLocked(); err != nil {
		ss.log.Warn("manifest", "err", err)
	}
}

// fail stops the recording by itself (disk full, quota), once.
func (ss *Session) fail(err error) {
	ss.mu.Lock()
	first := !ss.failed && !ss.stopped
	ss.failed = true
	ss.mu.Unlock()
	if first {
		ss.log.Warn("recording stops by itself", "err", err)
		if ss.onFail != nil {
			go ss.onFail(err)
		}
	}
}

// Stop finishes the recording: no more tracks, every file finalised, the
// manifest written with state (StateFinished or StateStopped) and why.
// The caller must have stopped media.SFU.Record first (it closes the
// sinks); Stop closes any still open.
func (ss *Session) Stop(state, reason string) Manifest {
	ss.mu.Lock()
	if ss.stopped {
		m := ss.manifestLocked()
		ss.mu.Unlock()
		return m
	}
	ss.stopped = true
	ws := ss.writers
	ss.mu.Unlock()
	for _, w := range ws {
		w.Close()
		<-w.done
	}
	ss.svc.mu.Lock()
	if ss.svc.active[ss.m.ChannelID] == ss {
		delete(ss.svc.active, ss.m.ChannelID)
	}
	ss.svc.mu.Unlock()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := ss.svc.cfg.Now()
	ss.m.EndedAt = &now
	ss.m.State = state
	ss.m.StopReason = reason
	ss.m.DurationMS = now.Sub(ss.m.StartedAt).Milliseconds()
	if err := ss.saveLocked(); err != nil {
		ss.log.Error("final manifest", "err", err)
	}
	m := ss.manifestLocked()
	ss.log.Info("recording stopped", "state", state, "reason", reason, "files", len(m.Files))
	return m
}

// manifestLocked is the manifest without the files that got no media.
func (ss *Session) manifestLocked() Manifest {
	m := ss.m
	m.Files = make([]File, 0, len(ss.m.Files))
	for i, f := range ss.m.Files {
		if !ss.empty[i] {
			m.Files = append(m.Files, f)
		}
	}
	m.Participants = append([]Person{}, ss.m.Participants...)
	return m
}

// saveLocked writes the manifest.
func (ss *Session) saveLocked() error {
	m := ss.manifestLocked()
	return writeManifest(ss.dir, &m)
}

// dropEmpty removes a file that got no media (a video track that never
// sent a keyframe, a track muted throughout).
func (ss *Session) dropEmpty(w *trackWriter) {
	os.Remove(w.path)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.empty[w.idx] = true
	if err := ss.saveLocked(); err != nil {
		ss.log.Warn("manifest", "err", err)
	}
}
