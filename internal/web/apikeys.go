package web

import (
	"errors"
	"net/http"

	"github.com/parley/parley/internal/account"
)

// This file: the account page's API keys (the API's own routes are in
// internal/api).

func (s *Server) createAPIKey(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	k, key, err := s.accounts.CreateAPIKey(r.Context(), mustUser(r), r.PostFormValue("key_name"))
	if fields, ok := fieldErrors(err); ok {
		s.renderAccount(w, r, http.StatusUnprocessableEntity, page{Form: formValues(r, "key_name"), Errors: map[string]string{"key_name": fields["name"]}}, accountData{})
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	// Shown in this response only (no redirect): the secret is never stored.
	s.renderAccount(w, r, http.StatusCreated, page{}, accountData{NewAPIKey: key, NewAPIKeyName: k.Name})
}

func (s *Server) revokeAPIKey(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	err := s.accounts.RevokeAPIKey(r.Context(), mustUser(r), r.PathValue("id"))
	if errors.Is(err, account.ErrNotFound) {
		s.errorPage(w, r, http.StatusNotFound, "No such API key", "That API key does not exist or was already revoked. Go back to your account page.")
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	http.Redirect(w, r, "/account?done=revoked", http.StatusSeeOther)
}
