package api

import (
	"errors"
	"net/http"

	"github.com/parley/parley/internal/studio"
)

func (a *API) routeTakes() {
	a.handle("GET", "/channels/{id}/takes", a.listTakes)
	a.handle("GET", "/channels/{id}/takes/{take}", a.getTake)
	a.handle("DELETE", "/channels/{id}/takes/{take}", a.deleteTake)
	a.handle("GET", "/channels/{id}/takes/{take}/audio", a.takeAudio)
}

// Take is a studio take (studio.TakeView, the studio's own JSON form),
// with where its audio is.
type Take struct {
	studio.TakeView
	SongName  string `json:"songName"`
	TrackName string `json:"trackName"`
	AudioPath string `json:"audioPath"`
}

// takesOf returns every take of a channel the caller is a member of,
// with the studio member the caller is there.
func (a *API) takesOf(r *http.Request, c Caller) (string, studio.Member, []Take, error) {
	id := r.PathValue("id")
	ch, err := a.d.Accounts.Channel(r.Context(), c.User, id)
	if err != nil {
		return "", studio.Member{}, nil, err
	}
	if a.d.Studio == nil {
		return "", studio.Member{}, nil, Errorf(http.StatusNotFound, "This server has no studio.")
	}
	v, err := a.d.Studio.View(r.Context(), id)
	if err != nil {
		return "", studio.Member{}, nil, err
	}
	var out []Take
	for _, s := range v.Songs {
		for _, t := range s.Tracks {
			for _, k := range t.Takes {
				out = append(out, Take{TakeView: k, SongName: s.Name, TrackName: t.Name,
					AudioPath: Prefix + "/channels/" + id + "/takes/" + k.ID + "/audio"})
			}
		}
	}
	return id, studio.Member{UserID: c.User.ID, Owner: ch.OwnerID == c.User.ID}, out, nil
}

func (a *API) listTakes(w http.ResponseWriter, r *http.Request, c Caller) error {
	limit, after, err := pageParams(r)
	if err != nil {
		return err
	}
	_, _, takes, err := a.takesOf(r, c)
	if err != nil {
		return err
	}
	key := func(k Take) string { return newestFirst(k.CreatedAt, k.ID) }
	sortBy(takes, key)
	page, next := paginate(takes, key, after, limit)
	writeJSON(w, http.StatusOK, newList(page, next))
	return nil
}

func (a *API) getTake(w http.ResponseWriter, r *http.Request, c Caller) error {
	_, _, takes, err := a.takesOf(r, c)
	if err != nil {
		return err
	}
	for _, k := range takes {
		if k.ID == r.PathValue("take") {
			writeJSON(w, http.StatusOK, k)
			return nil
		}
	}
	return Errorf(http.StatusNotFound, "No such take in this channel's studio.")
}

func (a *API) deleteTake(w http.ResponseWriter, r *http.Request, c Caller) error {
	id, m, _, err := a.takesOf(r, c)
	if err != nil {
		return err
	}
	return takeError(a.d.Studio.DeleteTake(r.Context(), id, r.PathValue("take"), m), w)
}

func takeError(err error, w http.ResponseWriter) error {
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
		return nil
	case errors.Is(err, studio.ErrNotFound):
		return Errorf(http.StatusNotFound, "No such take in this channel's studio.")
	case errors.Is(err, studio.ErrNotAllowed):
		return Errorf(http.StatusForbidden, "Only the member who recorded this take, or the channel's owner, may delete it.")
	}
	return err
}

// takeAudio serves a take's audio as an attachment: a finished take with
// range requests, one being recorded streamed as it grows.
func (a *API) takeAudio(w http.ResponseWriter, r *http.Request, c Caller) error {
	id := r.PathValue("id")
	if _, err := a.d.Accounts.Channel(r.Context(), c.User, id); err != nil {
		return err
	}
	if a.d.Studio == nil {
		return Errorf(http.StatusNotFound, "This server has no studio.")
	}
	q := r.URL.Query()
	q.Set("download", "1")
	r.URL.RawQuery = q.Encode()
	if err := a.d.Studio.ServeAudio(w, r, id, r.PathValue("take")); err != nil {
		if errors.Is(err, studio.ErrNotFound) {
			return Errorf(http.StatusNotFound, "No such take in this channel's studio.")
		}
		return err
	}
	return nil
}
