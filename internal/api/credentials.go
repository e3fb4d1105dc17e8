package api

import (
	"net/http"
	"sort"
	"time"

	"github.com/parley/parley/internal/store"
)

func (a *API) routeCredentials() {
	a.handle("GET", "/tokens", a.listTokens)
	a.handle("POST", "/tokens", a.createToken)
	a.handle("DELETE", "/tokens/{token}", a.revokeToken)
	a.handle("GET", "/api-keys", a.listAPIKeys)
	a.handle("POST", "/api-keys", a.createAPIKey)
	a.handle("DELETE", "/api-keys/{key}", a.revokeAPIKey)
}

// Credential is a personal access token or an API key, without its
// secret.
type Credential struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"createdAt"`
	// Current: this request was made with it.
	Current bool `json:"current"`
}

// NewCredential is a credential just made, with its secret, shown once.
type NewCredential struct {
	Credential
	// Secret is the whole Bearer value: "parley_…" for a token,
	// "pk_<id>.<secret>" for an API key.
	Secret string `json:"secret"`
}

// mayMint refuses to make a credential with another Bearer credential: a
// leaked token or key must not be able to outlive its revocation by
// minting successors. Logged-in people (the session cookie) may.
func mayMint(c Caller) error {
	if c.Via != "session" {
		return Errorf(http.StatusForbidden, "New tokens and API keys are made by a logged-in person (the account page, or this API with the login cookie), not with another token or key.")
	}
	return nil
}

func credentialPage(r *http.Request, all []Credential) (list[Credential], error) {
	limit, after, err := pageParams(r)
	if err != nil {
		return list[Credential]{}, err
	}
	key := func(c Credential) string { return newestFirst(c.CreatedAt, c.ID) }
	sort.SliceStable(all, func(i, j int) bool { return key(all[i]) < key(all[j]) })
	page, next := paginate(all, key, after, limit)
	return newList(page, next), nil
}

func (a *API) listTokens(w http.ResponseWriter, r *http.Request, c Caller) error {
	ts, err := a.d.Accounts.Tokens(r.Context(), c.User)
	if err != nil {
		return err
	}
	all := make([]Credential, len(ts))
	for i, t := range ts {
		all[i] = tokenOut(t, c)
	}
	out, err := credentialPage(r, all)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func tokenOut(t store.Token, c Caller) Credential {
	return Credential{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt.UTC(), Current: c.Auth.Credential == "token:"+t.ID}
}

func apiKeyOut(k store.APIKey, c Caller) Credential {
	return Credential{ID: k.ID, Name: k.Name, CreatedAt: k.CreatedAt.UTC(), Current: c.Auth.Credential == "apikey:"+k.ID}
}

// mintName checks that c may make a credential and reads its name from
// the request body.
func mintName(r *http.Request, c Caller) (string, error) {
	if err := mayMint(c); err != nil {
		return "", err
	}
	var in struct {
		Name string `json:"name"`
	}
	if err := decode(r, &in); err != nil {
		return "", err
	}
	return in.Name, nil
}

func (a *API) createToken(w http.ResponseWriter, r *http.Request, c Caller) error {
	name, err := mintName(r, c)
	if err != nil {
		return err
	}
	t, secret, err := a.d.Accounts.CreateToken(r.Context(), c.User, name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, NewCredential{Credential: tokenOut(t, c), Secret: secret})
	return nil
}

func (a *API) revokeToken(w http.ResponseWriter, r *http.Request, c Caller) error {
	if err := a.d.Accounts.RevokeToken(r.Context(), c.User, r.PathValue("token")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) listAPIKeys(w http.ResponseWriter, r *http.Request, c Caller) error {
	ks, err := a.d.Accounts.APIKeys(r.Context(), c.User)
	if err != nil {
		return err
	}
	all := make([]Credential, len(ks))
	for i, k := range ks {
		all[i] = apiKeyOut(k, c)
	}
	out, err := credentialPage(r, all)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) createAPIKey(w http.ResponseWriter, r *http.Request, c Caller) error {
	name, err := mintName(r, c)
	if err != nil {
		return err
	}
	k, key, err := a.d.Accounts.CreateAPIKey(r.Context(), c.User, name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, NewCredential{Credential: apiKeyOut(k, c), Secret: key})
	return nil
}

func (a *API) revokeAPIKey(w http.ResponseWriter, r *http.Request, c Caller) error {
	if err := a.d.Accounts.RevokeAPIKey(r.Context(), c.User, r.PathValue("key")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
