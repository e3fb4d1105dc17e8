package api

import (
	"errors"
	"net/http"

	"github.com/parley/parley/internal/room"
	"github.com/parley/parley/internal/signaling"
)

func (a *API) routeCall() {
	a.handle("GET", "/channels/{id}/call", a.getCall)
	a.handle("POST", "/channels/{id}/call/lock", a.callAction(signaling.ActionLock))
	a.handle("POST", "/channels/{id}/call/unlock", a.callAction(signaling.ActionUnlock))
	a.handle("POST", "/channels/{id}/call/end", a.callAction(signaling.ActionEnd))
	a.handle("POST", "/channels/{id}/call/participants/{participant}/mute", a.callAction(signaling.ActionMute))
	a.handle("POST", "/channels/{id}/call/participants/{participant}/allow-unmute", a.callAction(signaling.ActionAllowUnmute))
	a.handle("POST", "/channels/{id}/call/participants/{participant}/camera-off", a.callAction(signaling.ActionCameraOff))
	a.handle("DELETE", "/channels/{id}/call/participants/{participant}", a.callAction(signaling.ActionRemove))
}

// Participant is someone in a channel's call.
type Participant struct {
	ID       string `json:"id"`
	UserID   string `json:"userId"`
	Name     string `json:"name"`
	Username string `json:"username,omitempty"`
	// Role is "owner", "moderator", "member" or "guest".
	Role   string `json:"role"`
	Audio  bool   `json:"audio"`
	Video  bool   `json:"video"`
	Screen bool   `json:"screen"`
	Hand   bool   `json:"hand"`
}

type callOut struct {
	Participants []Participant `json:"participants"`
	Locked       bool          `json:"locked"`
}

func (a *API) getCall(w http.ResponseWriter, r *http.Request, c Caller) error {
	id := r.PathValue("id")
	if _, err := a.d.Accounts.Channel(r.Context(), c.User, id); err != nil {
		return err
	}
	st, err := a.d.Rooms.Call(r.Context(), id)
	if err != nil {
		return err
	}
	out := callOut{Participants: make([]Participant, len(st.Participants)), Locked: st.Locked}
	for i, p := range st.Participants {
		role := p.Role
		if role == "" {
			role = "member"
		}
		out.Participants[i] = Participant{ID: p.ID, UserID: p.UserID, Name: p.Name, Username: p.Username, Role: role,
			Audio: p.State.Audio, Video: p.State.Video, Screen: p.State.Screen, Hand: p.State.Hand}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// callAction moderates the call as the room would a moderate message
// from the caller: the owner and moderators only, never against the
// owner. Mute takes an optional body {"ask": true} (stay muted until a
// moderator allows unmuting).
func (a *API) callAction(action string) handler {
	return func(w http.ResponseWriter, r *http.Request, c Caller) error {
		id := r.PathValue("id")
		ch, err := a.d.Accounts.Channel(r.Context(), c.User, id)
		if err != nil {
			return err
		}
		role, err := a.d.Accounts.Role(r.Context(), c.User, ch)
		if err != nil {
			return err
		}
		if !signaling.CanModerate(role) {
			return Errorf(http.StatusForbidden, "Only the channel's owner and moderators may moderate its call.")
		}
		var in struct {
			Ask bool `json:"ask"`
		}
		if action == signaling.ActionMute && r.ContentLength != 0 {
			if err := decode(r, &in); err != nil {
				return err
			}
		}
		user := signaling.User{UserID: c.User.ID, Name: c.User.DisplayName, Username: c.User.Username, Role: role}
		err = a.d.Rooms.Moderate(r.Context(), id, user, action, r.PathValue("participant"), in.Ask)
		var se *signaling.Error
		switch {
		case errors.Is(err, room.ErrNoCall):
			if r.PathValue("participant") != "" {
				return Errorf(http.StatusNotFound, "Nobody is in this channel's call, so that participant is not in it.")
			}
			return Errorf(http.StatusConflict, "Nobody is in this channel's call.")
		case errors.As(err, &se):
			switch se.Code {
			case signaling.CodeForbidden:
				return Errorf(http.StatusForbidden, "%s.", se.Message)
			case signaling.CodeUnknownPeer:
				return Errorf(http.StatusNotFound, "%s.", se.Message)
			default:
				return Errorf(http.StatusConflict, "%s.", se.Message)
			}
		case err != nil:
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}
