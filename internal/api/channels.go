package api

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/parley/parley/internal/account"
	"github.com/parley/parley/internal/store"
)

func (a *API) routeChannels() {
	a.handle("GET", "/channels", a.listChannels)
	a.handle("POST", "/channels", a.createChannel)
	a.handle("GET", "/channels/{id}", a.getChannel)
	a.handle("PATCH", "/channels/{id}", a.updateChannel)
	a.handle("DELETE", "/channels/{id}", a.deleteChannel)
	a.handle("GET", "/channels/{id}/members", a.listMembers)
	a.handle("POST", "/channels/{id}/members", a.addMember)
	a.handle("DELETE", "/channels/{id}/members/{user}", a.removeMember)
	a.handle("GET", "/channels/{id}/invites", a.listInvites)
	a.handle("POST", "/channels/{id}/invites", a.createInvite)
	a.handle("DELETE", "/channels/{id}/invites/{invite}", a.revokeInvite)
}

// Channel is a channel as the API shows it.
type Channel struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	OwnerID   string    `json:"ownerId"`
	Mode      string    `json:"mode"`
	CreatedAt time.Time `json:"createdAt"`
}

func channelOut(c store.Channel) Channel {
	return Channel{ID: c.ID, Name: c.Name, OwnerID: c.OwnerID, Mode: c.Mode, CreatedAt: c.CreatedAt.UTC()}
}

// channelETag is the version of what PATCH changes (and who may).
func channelETag(c store.Channel) string { return etag(c.ID, c.Name, c.Mode, c.OwnerID) }

// newestFirst is a sort key that orders newest first, ties by id.
func newestFirst(t time.Time, id string) string {
	return fmt.Sprintf("%019d:%s", math.MaxInt64-t.UnixMilli(), id)
}

func (a *API) listChannels(w http.ResponseWriter, r *http.Request, c Caller) error {
	limit, after, err := pageParams(r)
	if err != nil {
		return err
	}
	cs, err := a.d.Accounts.Channels(r.Context(), c.User)
	if err != nil {
		return err
	}
	key := func(ch store.Channel) string { return newestFirst(ch.CreatedAt, ch.ID) }
	sort.Slice(cs, func(i, j int) bool { return key(cs[i]) < key(cs[j]) })
	page, next := paginate(cs, key, after, limit)
	out := make([]Channel, len(page))
	for i, ch := range page {
		out[i] = channelOut(ch)
	}
	writeJSON(w, http.StatusOK, newList(out, next))
	return nil
}

func (a *API) createChannel(w http.ResponseWriter, r *http.Request, c Caller) error {
	var in struct {
		Name string `json:"name"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	ch, err := a.d.Accounts.CreateChannel(r.Context(), c.User, in.Name)
	if err != nil {
		return err
	}
	w.Header().Set("Location", Prefix+"/channels/"+ch.ID)
	w.Header().Set("ETag", channelETag(ch))
	writeJSON(w, http.StatusCreated, channelOut(ch))
	return nil
}

func (a *API) getChannel(w http.ResponseWriter, r *http.Request, c Caller) error {
	ch, err := a.d.Accounts.Channel(r.Context(), c.User, r.PathValue("id"))
	if err != nil {
		return err
	}
	w.Header().Set("ETag", channelETag(ch))
	writeJSON(w, http.StatusOK, channelOut(ch))
	return nil
}

func (a *API) updateChannel(w http.ResponseWriter, r *http.Request, c Caller) error {
	ch, err := a.d.Accounts.Channel(r.Context(), c.User, r.PathValue("id"))
	if err != nil {
		return err
	}
	if ch.OwnerID != c.User.ID {
		return Errorf(http.StatusForbidden, "Only the channel's owner may change it.")
	}
	var in struct {
		Name *string `json:"name"`
		Mode *string `json:"mode"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := checkIfMatch(r, channelETag(ch)); err != nil {
		return err
	}
	ch, err = a.d.Accounts.UpdateChannel(r.Context(), c.User, ch, account.ChannelUpdate{Name: in.Name, Mode: in.Mode})
	if errors.Is(err, account.ErrChanged) {
		return preconditionFailed()
	}
	if err != nil {
		return err
	}
	w.Header().Set("ETag", channelETag(ch))
	writeJSON(w, http.StatusOK, channelOut(ch))
	return nil
}

// deleteChannel deletes a channel; an If-Match, if sent, must match.
func (a *API) deleteChannel(w http.ResponseWriter, r *http.Request, c Caller) error {
	if r.Header.Get("If-Match") != "" {
		ch, err := a.d.Accounts.Channel(r.Context(), c.User, r.PathValue("id"))
		if err != nil {
			return err
		}
		if err := checkIfMatch(r, channelETag(ch)); err != nil {
			return err
		}
	}
	if err := a.d.Accounts.DeleteChannel(r.Context(), c.User, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Member is a channel member with their role in it.
type Member struct {
	ID          string `json:"id"`
	Username    string `json:"username"`
	DisplayName string `json:"displayName"`
	// Role is "owner", "moderator" or "member".
	Role string `json:"role"`
}

func (a *API) listMembers(w http.ResponseWriter, r *http.Request, c Caller) error {
	limit, after, err := pageParams(r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	ch, err := a.d.Accounts.Channel(r.Context(), c.User, id)
	if err != nil {
		return err
	}
	us, err := a.d.Accounts.Members(r.Context(), c.User, id)
	if err != nil {
		return err
	}
	mods, err := a.d.Accounts.Moderators(r.Context(), c.User, id)
	if err != nil {
		return err
	}
	key := func(u store.User) string { return strings.ToLower(u.DisplayName) + "\x00" + u.ID }
	sort.Slice(us, func(i, j int) bool { return key(us[i]) < key(us[j]) })
	page, next := paginate(us, key, after, limit)
	out := make([]Member, len(page))
	for i, u := range page {
		out[i] = memberOut(u, ch, mods[u.ID])
	}
	writeJSON(w, http.StatusOK, newList(out, next))
	return nil
}

func memberOut(u store.User, ch store.Channel, moderator bool) Member {
	role := "member"
	switch {
	case u.ID == ch.OwnerID:
		role = "owner"
	case moderator:
		role = "moderator"
	}
	return Member{ID: u.ID, Username: u.Username, DisplayName: u.DisplayName, Role: role}
}

func (a *API) addMember(w http.ResponseWriter, r *http.Request, c Caller) error {
	var in struct {
		Username string `json:"username"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	id := r.PathValue("id")
	u, err := a.d.Accounts.AddMember(r.Context(), c.User, id, in.Username)
	if err != nil {
		return err
	}
	ch, err := a.d.Accounts.Channel(r.Context(), c.User, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, memberOut(u, ch, false))
	return nil
}

func (a *API) removeMember(w http.ResponseWriter, r *http.Request, c Caller) error {
	if err := a.d.Accounts.RemoveMember(r.Context(), c.User, r.PathValue("id"), r.PathValue("user")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Invite is an invite link of a channel.
type Invite struct {
	ID          string     `json:"id"`
	Code        string     `json:"code"`
	Path        string     `json:"path"`
	CreatedBy   string     `json:"createdBy"`
	CreatorName string     `json:"creatorName"`
	CreatedAt   time.Time  `json:"createdAt"`
	ExpiresAt   *time.Time `json:"expiresAt,omitempty"`
	MaxUses     int        `json:"maxUses"`
	Uses        int        `json:"uses"`
	// State is "active", "expired" or "used-up".
	State string `json:"state"`
}

func inviteOut(inv store.Invite, now time.Time) Invite {
	out := Invite{ID: inv.ID, Code: inv.Code, Path: "/invite/" + inv.Code, CreatedBy: inv.CreatedBy, CreatorName: inv.CreatorName,
		CreatedAt: inv.CreatedAt.UTC(), MaxUses: inv.MaxUses, Uses: inv.Uses, State: "active"}
	if !inv.ExpiresAt.IsZero() {
		t := inv.ExpiresAt.UTC()
		out.ExpiresAt = &t
	}
	switch err := account.InviteUsable(inv, now); {
	case errors.Is(err, account.ErrInviteExpired):
		out.State = "expired"
	case errors.Is(err, account.ErrInviteUsedUp):
		out.State = "used-up"
	}
	return out
}

func (a *API) listInvites(w http.ResponseWriter, r *http.Request, c Caller) error {
	limit, after, err := pageParams(r)
	if err != nil {
		return err
	}
	invs, err := a.d.Accounts.Invites(r.Context(), c.User, r.PathValue("id"))
	if err != nil {
		return err
	}
	key := func(inv store.Invite) string { return newestFirst(inv.CreatedAt, inv.ID) }
	sort.Slice(invs, func(i, j int) bool { return key(invs[i]) < key(invs[j]) })
	page, next := paginate(invs, key, after, limit)
	now := a.d.Clock()
	out := make([]Invite, len(page))
	for i, inv := range page {
		out[i] = inviteOut(inv, now)
	}
	writeJSON(w, http.StatusOK, newList(out, next))
	return nil
}

func (a *API) createInvite(w http.ResponseWriter, r *http.Request, c Caller) error {
	var in struct {
		Expires string `json:"expires"`
		MaxUses *int   `json:"maxUses"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	uses := ""
	if in.MaxUses != nil {
		uses = fmt.Sprint(*in.MaxUses)
	}
	opts, err := account.ParseInviteOptions(in.Expires, uses)
	var ve *account.ValidationError
	if errors.As(err, &ve) {
		if msg, ok := ve.Fields["max_uses"]; ok { // the form's name; JSON's is maxUses
			return Invalid("maxUses", msg)
		}
		return err
	}
	if err != nil {
		return err
	}
	inv, err := a.d.Accounts.CreateInvite(r.Context(), c.User, r.PathValue("id"), opts)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, inviteOut(inv, a.d.Clock()))
	return nil
}

func (a *API) revokeInvite(w http.ResponseWriter, r *http.Request, c Caller) error {
	if err := a.d.Accounts.RevokeInvite(r.Context(), c.User, r.PathValue("id"), r.PathValue("invite")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
