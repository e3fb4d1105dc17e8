package api

// Join tokens (docs/api.md, "Join tokens"): the owner's app mints a
// token that lets one of its users into one channel's call.

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/parley/parley/internal/account"
	"github.com/parley/parley/internal/jointoken"
)

func (a *API) routeJoinTokens() {
	a.handle("POST", "/channels/{id}/join-tokens", a.needJoinTokens(a.mintJoinToken))
	a.handle("DELETE", "/join-tokens/{jti}", a.needJoinTokens(a.revokeJoinToken))
}

// needJoinTokens answers 404 when the server has no join tokens.
func (a *API) needJoinTokens(h handler) handler {
	return func(w http.ResponseWriter, r *http.Request, c Caller) error {
		if a.d.JoinTokens == nil {
			return Errorf(http.StatusNotFound, "This server does not issue join tokens.")
		}
		return h(w, r, c)
	}
}

type joinTokenIn struct {
	ExternalUserID string    `json:"externalUserId"`
	DisplayName    string    `json:"displayName"`
	Grants         *[]string `json:"grants"`
	TTLSeconds     *int      `json:"ttlSeconds"`
	EmbedOrigins   []string  `json:"embedOrigins"`
}

type joinTokenOut struct {
	Token        string    `json:"token"`
	JTI          string    `json:"jti"`
	ChannelID    string    `json:"channelId"`
	UserID       string    `json:"userId"`
	DisplayName  string    `json:"displayName"`
	Grants       []string  `json:"grants"`
	EmbedOrigins []string  `json:"embedOrigins"`
	ExpiresAt    time.Time `json:"expiresAt"`
	JoinURL      string    `json:"joinUrl"`
	EmbedURL     string    `json:"embedUrl"`
}

func (a *API) mintJoinToken(w http.ResponseWriter, r *http.Request, c Caller) error {
	ch, err := a.d.Accounts.Channel(r.Context(), c.User, r.PathValue("id"))
	if err != nil {
		return err
	}
	if ch.OwnerID != c.User.ID {
		return Errorf(http.StatusForbidden, "Only the channel's owner (with an API key or access token of theirs) may mint join tokens for it.")
	}
	var in joinTokenIn
	if err := decode(r, &in); err != nil {
		return err
	}
	name, err := account.GuestName(in.DisplayName)
	if err != nil {
		var ve *account.ValidationError
		if errors.As(err, &ve) {
			return Invalid("displayName", ve.Fields["name"])
		}
		return err
	}
	req := jointoken.MintRequest{ChannelID: ch.ID, IssuerID: c.User.ID, MintedBy: c.Auth.Credential, ExternalID: in.ExternalUserID, Name: name, EmbedOrigins: in.EmbedOrigins}
	if in.Grants != nil {
		req.Grants = *in.Grants
		if req.Grants == nil {
			req.Grants = []string{}
		}
	}
	if in.TTLSeconds != nil {
		if *in.TTLSeconds <= 0 {
			return Invalid("ttlSeconds", fmt.Sprintf("must be between %d and %d", int(jointoken.MinTTL/time.Second), int(jointoken.MaxTTL/time.Second)))
		}
		req.TTL = time.Duration(*in.TTLSeconds) * time.Second
	}
	m, err := a.d.JoinTokens.Mint(r.Context(), req)
	var ve *jointoken.ValidationError
	switch {
	case errors.As(err, &ve):
		return Invalid(fieldName(ve.Field), ve.Msg)
	case errors.Is(err, jointoken.ErrTooMany):
		return Errorf(http.StatusConflict, "%s", err.Error())
	case err != nil:
		return err
	}
	q := "?token=" + url.QueryEscape(m.Token)
	writeJSON(w, http.StatusCreated, joinTokenOut{Token: m.Token, JTI: m.JTI, ChannelID: ch.ID, UserID: m.UserID, DisplayName: name,
		Grants: m.Grants, EmbedOrigins: nonNil(m.EmbedOrigins), ExpiresAt: m.ExpiresAt.UTC(),
		JoinURL: "/c/" + url.PathEscape(ch.ID) + q, EmbedURL: "/embed/c/" + url.PathEscape(ch.ID) + q})
	return nil
}

// fieldName maps the service's field names to the request's.
func fieldName(f string) string {
	switch f {
	case "external_user_id":
		return "externalUserId"
	case "ttl_seconds":
		return "ttlSeconds"
	case "embed_origins":
		return "embedOrigins"
	}
	return f
}

func nonNil(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}

// revokeJoinToken revokes a token (and its refreshes) and ends every
// connection made with it.
func (a *API) revokeJoinToken(w http.ResponseWriter, r *http.Request, c Caller) error {
	jti := r.PathValue("jti")
	err := a.d.JoinTokens.Revoke(r.Context(), c.User.ID, jti)
	if errors.Is(err, jointoken.ErrNotFound) {
		return Errorf(http.StatusNotFound, "No join token %q minted by you.", truncateRunes(jti, 64))
	}
	if err != nil {
		return err
	}
	a.d.Rooms.EndAuth("", jointoken.Credential(jti), "the app revoked your join token")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
