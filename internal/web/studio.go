package web

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/parley/parley/internal/account"
	"github.com/parley/parley/internal/store"
	"github.com/parley/parley/internal/studio"
)

// studioAPI is the prefix of the studio's JSON routes (docs/api.md).
const studioAPI = "/api/channels/{id}/studio"

// routeStudio adds the studio page and its API. Every route checks that
// the caller is a member of the channel; cross-origin writes are refused
// by the mux's CrossOriginProtection like every other route.
func (s *Server) routeStudio(mux *http.ServeMux) {
	if s.studio == nil {
		return
	}
	mux.HandleFunc("GET /c/{id}/studio", s.requirePage(s.studioPage))
	mux.HandleFunc("GET "+studioAPI, s.studioRoute(s.studioView))
	mux.HandleFunc("POST "+studioAPI+"/songs", s.studioRoute(s.studioCreateSong))
	mux.HandleFunc("PATCH "+studioAPI+"/songs/{song}", s.studioRoute(s.studioRenameSong))
	mux.HandleFunc("DELETE "+studioAPI+"/songs/{song}", s.studioRoute(s.studioDeleteSong))
	mux.HandleFunc("POST "+studioAPI+"/songs/{song}/tracks", s.studioRoute(s.studioCreateTrack))
	mux.HandleFunc("PATCH "+studioAPI+"/tracks/{track}", s.studioRoute(s.studioUpdateTrack))
	mux.HandleFunc("DELETE "+studioAPI+"/tracks/{track}", s.studioRoute(s.studioDeleteTrack))
	mux.HandleFunc("PUT "+studioAPI+"/tracks/{track}/chosen", s.studioRoute(s.studioChoose))
	mux.HandleFunc("POST "+studioAPI+"/tracks/{track}/takes", s.studioRoute(s.studioCreateTake))
	mux.HandleFunc("PUT "+studioAPI+"/takes/{take}/chunks/{seq}", s.studioRoute(s.studioChunk))
	mux.HandleFunc("POST "+studioAPI+"/takes/{take}/finish", s.studioRoute(s.studioFinish))
	mux.HandleFunc("GET "+studioAPI+"/takes/{take}/audio", s.studioRoute(s.studioAudio))
	mux.HandleFunc("DELETE "+studioAPI+"/takes/{take}", s.studioRoute(s.studioDeleteTake))
}

// studioHandler serves one studio route for a member of ch.
type studioHandler func(w http.ResponseWriter, r *http.Request, ch store.Channel, m studio.Member)

// studioRoute authenticates (401), checks membership (404/403) and hands
// the channel to h.
func (s *Server) studioRoute(h studioHandler) http.HandlerFunc {
	return s.requireAPI(func(w http.ResponseWriter, r *http.Request) {
		u := mustUser(r)
		ch, err := s.accounts.Channel(r.Context(), u, r.PathValue("id"))
		if err != nil {
			s.studioError(w, r, err)
			return
		}
		h(w, r, ch, studio.Member{UserID: u.ID, Owner: ch.OwnerID == u.ID})
	})
}

// studioError turns an error of the studio (or of the membership check)
// into its status and a JSON {"error": ...} the page shows as is.
func (s *Server) studioError(w http.ResponseWriter, r *http.Request, err error) {
	var (
		order *studio.OrderError
		large *studio.TooLargeError
		quota *studio.QuotaError
		inv   *studio.InvalidError
	)
	switch {
	case errors.Is(err, account.ErrNotFound):
		writeJSONError(w, http.StatusNotFound, "no such channel")
	case errors.Is(err, account.ErrForbidden):
		writeJSONError(w, http.StatusForbidden, "you are not a member of this channel")
	case errors.As(err, &order):
		// The page resends from "expected".
		writeJSON(w, http.StatusConflict, map[string]any{"error": err.Error(), "expected": order.Expected})
	case errors.As(err, &large):
		writeJSONError(w, http.StatusRequestEntityTooLarge, err.Error())
	case errors.As(err, &quota):
		writeJSONError(w, http.StatusInsufficientStorage, err.Error())
	case errors.As(err, &inv), errors.Is(err, studio.ErrEmptyChunk):
		writeJSONError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, studio.ErrUnsupported):
		writeJSONError(w, http.StatusUnsupportedMediaType, err.Error())
	case errors.Is(err, studio.ErrNotFound):
		writeJSONError(w, http.StatusNotFound, studio.ErrNotFound.Error())
	case errors.Is(err, studio.ErrNotRecorder), errors.Is(err, studio.ErrNotAllowed):
		writeJSONError(w, http.StatusForbidden, err.Error())
	case errors.Is(err, studio.ErrFinished):
		writeJSONError(w, http.StatusConflict, err.Error())
	default:
		s.log.Error("studio request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeJSONError(w, http.StatusInternalServerError, "the studio could not finish this request; try again")
	}
}

// readJSON decodes a small JSON body into v; false means a 400 was sent.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxFormBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSONError(w, http.StatusBadRequest, "the body must be a JSON object as docs/api.md shows: "+err.Error())
		return false
	}
	return true
}

type studioPageData struct {
	Channel store.Channel
	IsOwner bool
}

func (s *Server) studioPage(w http.ResponseWriter, r *http.Request) {
	u := mustUser(r)
	ch, err := s.accounts.Channel(r.Context(), u, r.PathValue("id"))
	if err != nil {
		s.channelError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "studio", page{Title: "Studio · " + ch.Name, Data: studioPageData{Channel: ch, IsOwner: ch.OwnerID == u.ID}})
}

func (s *Server) studioView(w http.ResponseWriter, r *http.Request, ch store.Channel, m studio.Member) {
	v, err := s.studio.View(r.Context(), ch.ID)
	if err != nil {
		s.studioError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

type nameBody struct {
	Name string `json:"name"`
}

func (s *Server) studioCreateSong(w http.ResponseWriter, r *http.Request, ch store.Channel, m studio.Member) {
	var b nameBody
	if !readJSON(w, r, &b) {
		return
	}
	song, err := s.studio.CreateSong(r.Context(), ch.ID, m, b.Name)
	if err != nil {
		s.studioError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, song)
}

func (s *Server) studioRenameSong(w http.ResponseWriter, r *http.Request, ch store.Channel, m studio.Member) {
	var b nameBody
	if !readJSON(w, r, &b) {
		return
	}
	if err := s.studio.RenameSong(r.Context(), ch.ID, r.PathValue("song"), m, b.Name); err != nil {
		s.studioError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) studioDeleteSong(w http.ResponseWriter, r *http.Request, ch store.Channel, m studio.Member) {
	if err := s.studio.DeleteSong(r.Context(), ch.ID, r.PathValue("song"), m); err != nil {
		s.studioError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) studioCreateTrack(w http.ResponseWriter, r *http.Request, ch store.Channel, m studio.Member) {
	var b nameBody
	if !readJSON(w, r, &b) {
		return
	}
	t, err := s.studio.CreateTrack(r.Context(), ch.ID, r.PathValue("song"), m, b.Name)
	if err != nil {
		s.studioError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, t)
}

func (s *Server) studioUpdateTrack(w http.ResponseWriter, r *http.Request, ch store.Channel, m studio.Member) {
	var b struct {
		Name     *string `json:"name"`
		Position *int    `json:"position"`
	}
	if !readJSON(w, r, &b) {
		return
	}
	if err := s.studio.UpdateTrack(r.Context(), ch.ID, r.PathValue("track"), m, b.Name, b.Position); err != nil {
		s.studioError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) studioDeleteTrack(w http.ResponseWriter, r *http.Request, ch store.Channel, m studio.Member) {
	if err := s.studio.DeleteTrack(r.Context(), ch.ID, r.PathValue("track"), m); err != nil {
		s.studioError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) studioChoose(w http.ResponseWriter, r *http.Request, ch store.Channel, m studio.Member) {
	var b struct {
		Take string `json:"take"`
	}
	if !readJSON(w, r, &b) {
		return
	}
	if err := s.studio.ChooseTake(r.Context(), ch.ID, r.PathValue("track"), b.Take, m); err != nil {
		s.studioError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) studioCreateTake(w http.ResponseWriter, r *http.Request, ch store.Channel, m studio.Member) {
	var b struct {
		OffsetMS  int64 `json:"offsetMs"`
		LatencyMS int64 `json:"latencyMs"`
	}
	if !readJSON(w, r, &b) {
		return
	}
	k, err := s.studio.CreateTake(r.Context(), ch.ID, r.PathValue("track"), m, b.OffsetMS, b.LatencyMS)
	if err != nil {
		s.studioError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, studio.TakeViewOf(k))
}

func (s *Server) studioChunk(w http.ResponseWriter, r *http.Request, ch store.Channel, m studio.Member) {
	seq, err := strconv.ParseInt(r.PathValue("seq"), 10, 64)
	if err != nil || seq < 0 {
		writeJSONError(w, http.StatusBadRequest, "the chunk number must be a whole number from 0")
		return
	}
	var dur int64
	if v := r.URL.Query().Get("durationMs"); v != "" {
		if dur, err = strconv.ParseInt(v, 10, 64); err != nil || dur < 0 {
			writeJSONError(w, http.StatusBadRequest, "durationMs must be a whole number of milliseconds")
			return
		}
	}
	levels, err := studio.ParseLevels(r.URL.Query().Get("levels"))
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	limit := s.studio.MaxChunk()
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.studioError(w, r, &studio.TooLargeError{What: "chunk", Limit: limit})
			return
		}
		writeJSONError(w, http.StatusBadRequest, "the chunk could not be read: send it again")
		return
	}
	ack, err := s.studio.Chunk(r.Context(), ch.ID, r.PathValue("take"), m, seq, data, dur, levels)
	if err != nil {
		s.studioError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ack)
}

func (s *Server) studioFinish(w http.ResponseWriter, r *http.Request, ch store.Channel, m studio.Member) {
	var b struct {
		DurationMS int64 `json:"durationMs"`
	}
	if !readJSON(w, r, &b) {
		return
	}
	k, err := s.studio.Finish(r.Context(), ch.ID, r.PathValue("take"), m, b.DurationMS)
	if err != nil {
		s.studioError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, studio.TakeViewOf(k))
}

func (s *Server) studioAudio(w http.ResponseWriter, r *http.Request, ch store.Channel, m studio.Member) {
	if err := s.studio.ServeAudio(w, r, ch.ID, r.PathValue("take")); err != nil {
		s.studioError(w, r, err)
	}
}

func (s *Server) studioDeleteTake(w http.ResponseWriter, r *http.Request, ch store.Channel, m studio.Member) {
	if err := s.studio.DeleteTake(r.Context(), ch.ID, r.PathValue("take"), m); err != nil {
		s.studioError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
