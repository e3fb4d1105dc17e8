package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path"

	"github.com/parley/parley/internal/recording"
	"github.com/parley/parley/internal/room"
	"github.com/parley/parley/internal/signaling"
	"github.com/parley/parley/internal/store"
	"github.com/parley/parley/internal/studio"
)

// Recordings is what the recording routes need from the server. Set it
// with SetRecordings before serving; without it the routes answer 404.
type Recordings struct {
	Service *recording.Service
	// Composites makes composite files; nil: not offered (no ffmpeg).
	Composites *recording.Compositor
	// MayRecord: nil if user may start/stop recording channelID, else
	// an error wrapping room.ErrForbidden (or another error).
	MayRecord func(ctx context.Context, user signaling.User, channelID string) error
	// MembersMayRecord and SetMembersMayRecord read and set the policy.
	MembersMayRecord    func(ctx context.Context, channelID string) (bool, error)
	SetMembersMayRecord func(ctx context.Context, channelID string, allow bool) error
}

// SetRecordings turns the recording routes on.
func (s *Server) SetRecordings(r *Recordings) { s.recordings = r }

func (s *Server) routeRecordings(mux *http.ServeMux) {
	mux.HandleFunc("GET /c/{id}/recordings", s.requirePage(s.recordingsPage))
	mux.HandleFunc("GET /api/channels/{id}/recording", s.requireAPI(s.recordingMember(s.apiRecordingState)))
	mux.HandleFunc("POST /api/channels/{id}/recording", s.requireAPI(s.recordingMember(s.apiRecord)))
	mux.HandleFunc("POST /api/channels/{id}/recording-policy", s.requireAPI(s.recordingMember(s.apiRecordingPolicy)))
	mux.HandleFunc("GET /api/channels/{id}/recordings", s.requireAPI(s.recordingMember(s.apiRecordings)))
	mux.HandleFunc("GET /api/channels/{id}/recordings/{rec}", s.requireAPI(s.recordingMember(s.apiRecordingGet)))
	mux.HandleFunc("DELETE /api/channels/{id}/recordings/{rec}", s.requireAPI(s.recordingMember(s.apiRecordingDelete)))
	mux.HandleFunc("POST /api/channels/{id}/recordings/{rec}/composite", s.requireAPI(s.recordingMember(s.apiComposite)))
	mux.HandleFunc("GET /api/channels/{id}/recordings/{rec}/files/{name}", s.requireAPI(s.recordingMember(s.apiRecordingFile)))
	mux.HandleFunc("POST /api/channels/{id}/recordings/{rec}/to-studio", s.requireAPI(s.recordingMember(s.apiRecordingToStudio)))
}

type channelKey struct{}

// recordingMember lets members of the channel through (403 otherwise,
// 404 for no such channel or recording disabled), with the channel in
// the context.
func (s *Server) recordingMember(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.recordings == nil {
			writeJSONError(w, http.StatusNotFound, "this server does not record calls")
			return
		}
		ch, err := s.accounts.Channel(r.Context(), mustUser(r), r.PathValue("id"))
		if err != nil {
			s.memberJSONError(w, err, "server error; try again")
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), channelKey{}, ch)))
	}
}

func mustChannel(r *http.Request) store.Channel {
	c, _ := r.Context().Value(channelKey{}).(store.Channel)
	return c
}

func signalUser(u store.User) signaling.User {
	return signaling.User{UserID: u.ID, Name: u.DisplayName, Username: u.Username}
}

func (s *Server) apiRecordingState(w http.ResponseWriter, r *http.Request) {
	ch := mustChannel(r)
	if s.forward(w, r, ch.ID) {
		return // the call's node knows its recording
	}
	allowed, err := s.recordings.MembersMayRecord(r.Context(), ch.ID)
	if err != nil {
		s.log.Error("recording policy", "err", err)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"recording":        s.rooms.Recording(r.Context(), ch.ID),
		"membersMayRecord": allowed,
		"mayRecord":        s.recordings.MayRecord(r.Context(), signalUser(mustUser(r)), ch.ID) == nil,
		"composites":       s.recordings.Composites != nil,
		"studio":           s.studio != nil,
	})
}

// apiRecord starts or stops recording: {"action": "start"|"stop"}.
func (s *Server) apiRecord(w http.ResponseWriter, r *http.Request) {
	if s.forward(w, r, mustChannel(r).ID) {
		return // the call records on its node
	}
	var body struct {
		Action string `json:"action"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&body); err != nil ||
		(body.Action != signaling.RecordStart && body.Action != signaling.RecordStop) {
		writeJSONError(w, http.StatusBadRequest, `send {"action": "start"} or {"action": "stop"}`)
		return
	}
	ch, u := mustChannel(r), signalUser(mustUser(r))
	if err := s.recordings.MayRecord(r.Context(), u, ch.ID); err != nil {
		if errors.Is(err, room.ErrForbidden) {
			writeJSONError(w, http.StatusForbidden, room.ErrForbidden.Error())
			return
		}
		s.log.Error("may record", "err", err)
		writeJSONError(w, http.StatusInternalServerError, "server error; try again")
		return
	}
	rec, err := s.rooms.Record(r.Context(), ch.ID, u, body.Action)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, map[string]any{"recording": rec})
	case errors.Is(err, room.ErrAlreadyRecords), errors.Is(err, room.ErrNotRecording), errors.Is(err, room.ErrNoCall):
		writeJSONError(w, http.StatusConflict, err.Error())
	case errors.Is(err, room.ErrRecordingP2P), errors.Is(err, room.ErrRecordingOff):
		writeJSONError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, recording.ErrQuota):
		writeJSONError(w, http.StatusInsufficientStorage, err.Error())
	default:
		s.log.Error("record", "err", err)
		writeJSONError(w, http.StatusInternalServerError, "recording could not start; try again")
	}
}

// apiRecordingPolicy lets the owner allow members to record:
// {"membersMayRecord": true}.
func (s *Server) apiRecordingPolicy(w http.ResponseWriter, r *http.Request) {
	ch := mustChannel(r)
	if ch.OwnerID != mustUser(r).ID {
		writeJSONError(w, http.StatusForbidden, "only the channel's owner may change who records")
		return
	}
	var body struct {
		MembersMayRecord *bool `json:"membersMayRecord"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&body); err != nil || body.MembersMayRecord == nil {
		writeJSONError(w, http.StatusBadRequest, `send {"membersMayRecord": true} or false`)
		return
	}
	if err := s.recordings.SetMembersMayRecord(r.Context(), ch.ID, *body.MembersMayRecord); err != nil {
		s.log.Error("set recording policy", "err", err)
		writeJSONError(w, http.StatusInternalServerError, "server error; try again")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"membersMayRecord": *body.MembersMayRecord})
}

func (s *Server) apiRecordings(w http.ResponseWriter, r *http.Request) {
	ch := mustChannel(r)
	list, err := s.recordings.Service.List(ch.ID)
	if err != nil {
		s.log.Error("list recordings", "err", err)
		writeJSONError(w, http.StatusInternalServerError, "could not list the recordings; try again")
		return
	}
	if c := s.recordings.Composites; c != nil {
		for i := range list {
			list[i].Composite = c.Status(ch.ID, list[i].ID, list[i])
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"recordings": list})
}

func (s *Server) apiRecordingGet(w http.ResponseWriter, r *http.Request) {
	ch := mustChannel(r)
	m, err := s.recordings.Service.Get(ch.ID, r.PathValue("rec"))
	if err != nil {
		writeJSONError(w, http.StatusNotFound, "no such recording")
		return
	}
	if c := s.recordings.Composites; c != nil {
		m.Composite = c.Status(ch.ID, m.ID, m)
	}
	writeJSON(w, http.StatusOK, m)
}

func (s *Server) apiRecordingDelete(w http.ResponseWriter, r *http.Request) {
	ch := mustChannel(r)
	if ch.OwnerID != mustUser(r).ID {
		writeJSONError(w, http.StatusForbidden, "only the channel's owner may delete recordings")
		return
	}
	err := s.recordings.Service.Delete(ch.ID, r.PathValue("rec"))
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, recording.ErrNotFound):
		writeJSONError(w, http.StatusNotFound, "no such recording")
	case errors.Is(err, recording.ErrRecording):
		writeJSONError(w, http.StatusConflict, err.Error())
	default:
		s.log.Error("delete recording", "err", err)
		writeJSONError(w, http.StatusInternalServerError, "could not delete the recording; try again")
	}
}

// apiComposite asks for a recording's composite file (members): 202 with
// its state; the recordings list shows its progress.
func (s *Server) apiComposite(w http.ResponseWriter, r *http.Request) {
	if s.recordings.Composites == nil {
		writeJSONError(w, http.StatusNotFound, recording.ErrNoFFmpeg.Error())
		return
	}
	st, err := s.recordings.Composites.Request(mustChannel(r).ID, r.PathValue("rec"))
	switch {
	case err == nil:
		writeJSON(w, http.StatusAccepted, map[string]any{"composite": st})
	case errors.Is(err, recording.ErrNotFound):
		writeJSONError(w, http.StatusNotFound, "no such recording")
	case errors.Is(err, recording.ErrRecording):
		writeJSONError(w, http.StatusConflict, err.Error())
	default:
		writeJSONError(w, http.StatusServiceUnavailable, err.Error())
	}
}

// apiRecordingFile serves one file, with range requests (seeking players,
// resumed downloads).
func (s *Server) apiRecordingFile(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	f, err := s.recordings.Service.Open(mustChannel(r).ID, r.PathValue("rec"), name)
	if err != nil {
		writeJSONError(w, http.StatusNotFound, "no such file in this recording")
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, "could not read the file; try again")
		return
	}
	switch path.Ext(name) {
	case ".ogg":
		w.Header().Set("Content-Type", "audio/ogg")
	case ".webm":
		w.Header().Set("Content-Type", "video/webm")
	case ".mkv":
		w.Header().Set("Content-Type", "video/x-matroska")
	case ".mp4":
		w.Header().Set("Content-Type", "video/mp4")
	}
	if r.URL.Query().Has("download") {
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	}
	w.Header().Set("Cache-Control", "private, no-cache")
	http.ServeContent(w, r, name, fi.ModTime(), f)
}

// recordingsPage is the channel's recordings list and player (members).
func (s *Server) recordingsPage(w http.ResponseWriter, r *http.Request) {
	u := mustUser(r)
	ch, err := s.accounts.Channel(r.Context(), u, r.PathValue("id"))
	if err != nil {
		s.channelError(w, r, err)
		return
	}
	if s.recordings == nil {
		s.errorPage(w, r, http.StatusNotFound, "Recording is off", "This server does not record calls.")
		return
	}
	s.render(w, r, http.StatusOK, "recordings", page{Title: "Recordings of " + ch.Name,
		Data: channelData{Channel: ch, IsOwner: ch.OwnerID == u.ID}})
}

// apiRecordingToStudio opens a stopped recording as a song in the studio
// (members): one track per participant, each of their audio files a
// finished take placed at the file's start on the recording's timeline.
// 201 with the song; 507 when the channel's studio storage cannot hold
// the files.
func (s *Server) apiRecordingToStudio(w http.ResponseWriter, r *http.Request) {
	if s.studio == nil {
		writeJSONError(w, http.StatusNotFound, "this server has no studio")
		return
	}
	ch, u := mustChannel(r), mustUser(r)
	m, err := s.recordings.Service.Get(ch.ID, r.PathValue("rec"))
	if err != nil {
		writeJSONError(w, http.StatusNotFound, "no such recording")
		return
	}
	if m.State == recording.StateRecording {
		writeJSONError(w, http.StatusConflict, recording.ErrRecording.Error())
		return
	}
	var tracks []studio.ImportTrack
	index := map[string]int{} // participant -> track
	for _, f := range m.Files {
		if f.Kind != "audio" || f.Bytes <= 0 {
			continue
		}
		i, ok := index[f.Participant]
		if !ok {
			i = len(tracks)
			index[f.Participant] = i
			name := f.UserName
			if name == "" {
				name = f.Participant
			}
			tracks = append(tracks, studio.ImportTrack{Name: name})
		}
		chID, recID, name := ch.ID, m.ID, f.Name
		tracks[i].Takes = append(tracks[i].Takes, studio.ImportTake{
			Open: func() (io.ReadCloser, error) { return s.recordings.Service.Open(chID, recID, name) },
			Size: f.Bytes, OffsetMS: f.StartMS, DurationMS: f.DurationMS,
		})
	}
	if len(tracks) == 0 {
		writeJSONError(w, http.StatusConflict, "this recording has no audio to open in the studio")
		return
	}
	name := "Call of " + m.StartedAt.UTC().Format("2006-01-02 15:04") + " UTC"
	song, err := s.studio.ImportSong(r.Context(), ch.ID, studio.Member{UserID: u.ID, Owner: ch.OwnerID == u.ID}, name, tracks)
	if err != nil {
		s.studioError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"song": song})
}
