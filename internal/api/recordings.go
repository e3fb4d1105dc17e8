package api

import (
	"errors"
	"net/http"
	"net/url"
	"path"
	"time"

	"github.com/parley/parley/internal/recording"
)

func (a *API) routeRecordings() {
	a.handle("GET", "/channels/{id}/recordings", a.listRecordings)
	a.handle("GET", "/channels/{id}/recordings/{rec}", a.getRecording)
	a.handle("DELETE", "/channels/{id}/recordings/{rec}", a.deleteRecording)
	a.handle("GET", "/channels/{id}/recordings/{rec}/files/{name}", a.recordingFile)
}

// Recording is a call recording: its manifest, in the API's naming.
type Recording struct {
	ID           string            `json:"id"`
	ChannelID    string            `json:"channelId"`
	StartedBy    RecordingPerson   `json:"startedBy"`
	StartedAt    time.Time         `json:"startedAt"`
	EndedAt      *time.Time        `json:"endedAt,omitempty"`
	State        string            `json:"state"`
	StopReason   string            `json:"stopReason,omitempty"`
	DurationMS   int64             `json:"durationMs"`
	Participants []RecordingPerson `json:"participants"`
	Files        []RecordingFile   `json:"files"`
}

// RecordingPerson is someone in a recording.
type RecordingPerson struct {
	ParticipantID string `json:"participantId,omitempty"`
	UserID        string `json:"userId"`
	Name          string `json:"name"`
}

// RecordingFile is one track's file; Path downloads it.
type RecordingFile struct {
	Name          string `json:"name"`
	Path          string `json:"path"`
	ParticipantID string `json:"participantId"`
	UserID        string `json:"userId,omitempty"`
	UserName      string `json:"userName,omitempty"`
	Source        string `json:"source"`
	Kind          string `json:"kind"`
	Codec         string `json:"codec"`
	StartMS       int64  `json:"startMs"`
	Sync          string `json:"sync"`
	DurationMS    int64  `json:"durationMs"`
	Bytes         int64  `json:"bytes"`
}

func recordingOut(m recording.Manifest) Recording {
	person := func(p recording.Person) RecordingPerson {
		return RecordingPerson{ParticipantID: p.ParticipantID, UserID: p.UserID, Name: p.Name}
	}
	out := Recording{ID: m.ID, ChannelID: m.ChannelID, StartedBy: person(m.StartedBy), StartedAt: m.StartedAt.UTC(), State: m.State,
		StopReason: m.StopReason, DurationMS: m.DurationMS, Participants: []RecordingPerson{}, Files: []RecordingFile{}}
	if m.EndedAt != nil {
		t := m.EndedAt.UTC()
		out.EndedAt = &t
	}
	for _, p := range m.Participants {
		out.Participants = append(out.Participants, person(p))
	}
	base := Prefix + "/channels/" + url.PathEscape(m.ChannelID) + "/recordings/" + url.PathEscape(m.ID) + "/files/"
	for _, f := range m.Files {
		out.Files = append(out.Files, RecordingFile{Name: f.Name, Path: base + url.PathEscape(f.Name), ParticipantID: f.Participant,
			UserID: f.UserID, UserName: f.UserName, Source: f.Source, Kind: f.Kind, Codec: f.Codec, StartMS: f.StartMS, Sync: f.Sync,
			DurationMS: f.DurationMS, Bytes: f.Bytes})
	}
	return out
}

// recordingsOf checks the caller is a member of the channel and that
// the server records at all.
func (a *API) recordingsOf(r *http.Request, c Caller) (string, error) {
	id := r.PathValue("id")
	if _, err := a.d.Accounts.Channel(r.Context(), c.User, id); err != nil {
		return "", err
	}
	if a.d.Recordings == nil {
		return "", Errorf(http.StatusNotFound, "This server does not record calls.")
	}
	return id, nil
}

func recordingError(err error) error {
	switch {
	case errors.Is(err, recording.ErrNotFound), errors.Is(err, recording.ErrBadName):
		return Errorf(http.StatusNotFound, "No such recording or file in this channel.")
	case errors.Is(err, recording.ErrRecording):
		return Errorf(http.StatusConflict, "The recording is still running: stop it first.")
	}
	return err
}

func (a *API) listRecordings(w http.ResponseWriter, r *http.Request, c Caller) error {
	limit, after, err := pageParams(r)
	if err != nil {
		return err
	}
	id, err := a.recordingsOf(r, c)
	if err != nil {
		return err
	}
	list, err := a.d.Recordings.List(id)
	if err != nil {
		return recordingError(err)
	}
	// List is newest first; ids start with the start time, so the key
	// orders the same way.
	key := func(m recording.Manifest) string { return newestFirst(m.StartedAt, m.ID) }
	sortBy(list, key)
	page, next := paginate(list, key, after, limit)
	out := make([]Recording, len(page))
	for i, m := range page {
		out[i] = recordingOut(m)
	}
	writeJSON(w, http.StatusOK, newList(out, next))
	return nil
}

func (a *API) getRecording(w http.ResponseWriter, r *http.Request, c Caller) error {
	id, err := a.recordingsOf(r, c)
	if err != nil {
		return err
	}
	m, err := a.d.Recordings.Get(id, r.PathValue("rec"))
	if err != nil {
		return recordingError(err)
	}
	writeJSON(w, http.StatusOK, recordingOut(m))
	return nil
}

func (a *API) deleteRecording(w http.ResponseWriter, r *http.Request, c Caller) error {
	id := r.PathValue("id")
	ch, err := a.d.Accounts.Channel(r.Context(), c.User, id)
	if err != nil {
		return err
	}
	if a.d.Recordings == nil {
		return Errorf(http.StatusNotFound, "This server does not record calls.")
	}
	if ch.OwnerID != c.User.ID {
		return Errorf(http.StatusForbidden, "Only the channel's owner may delete its recordings.")
	}
	if err := a.d.Recordings.Delete(id, r.PathValue("rec")); err != nil {
		return recordingError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// recordingFile serves one file with range requests, as an attachment.
func (a *API) recordingFile(w http.ResponseWriter, r *http.Request, c Caller) error {
	id, err := a.recordingsOf(r, c)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	f, err := a.d.Recordings.Open(id, r.PathValue("rec"), name)
	if err != nil {
		return recordingError(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	ct := "application/octet-stream"
	switch path.Ext(name) {
	case ".ogg":
		ct = "audio/ogg"
	case ".webm":
		ct = "video/webm"
	case ".mkv":
		ct = "video/x-matroska"
	case ".mp4":
		ct = "video/mp4"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Cache-Control", "private, no-cache")
	http.ServeContent(w, r, name, fi.ModTime(), f)
	return nil
}
