package web

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/parley/parley/internal/store"
	"github.com/parley/parley/internal/webhook"
)

// recentDeliveries is how many deliveries the account page lists.
const recentDeliveries = 50

// SetWebhooks enables the webhook routes; call it before serving.
func (s *Server) SetWebhooks(w *webhook.Service) { s.webhooks = w }

func (s *Server) routeWebhooks(mux *http.ServeMux) {
	mux.HandleFunc("POST /account/webhooks", s.requirePage(s.withWebhooks(s.createWebhookForm)))
	mux.HandleFunc("POST /account/webhooks/{id}/delete", s.requirePage(s.withWebhooks(s.deleteWebhookForm)))
	mux.HandleFunc("POST /account/webhooks/deliveries/{id}/resend", s.requirePage(s.withWebhooks(s.resendDeliveryForm)))
	// The JSON API for webhooks is internal/api's (/api/v1/webhooks).
}

// withWebhooks answers 404 while the server runs without webhooks.
func (s *Server) withWebhooks(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.webhooks == nil {
			http.NotFound(w, r)
			return
		}
		h(w, r)
	}
}

// webhookSection is the account page's webhook section.
type webhookSection struct {
	Webhooks   []store.Webhook
	Deliveries []store.Delivery
	Events     []eventChoice
	// NewSecret is the secret of a webhook just created: shown once.
	NewSecret, NewURL string
}

type eventChoice struct {
	Type, Label string
	Checked     bool
}

// fillWebhooks adds the webhook section to the account page; checked
// are the events ticked in a form being shown again.
func (s *Server) fillWebhooks(r *http.Request, d *accountData, checked []string) error {
	if s.webhooks == nil {
		return nil
	}
	u := mustUser(r)
	ws, err := s.webhooks.List(r.Context(), u.ID)
	if err != nil {
		return err
	}
	ds, err := s.webhooks.Deliveries(r.Context(), u.ID, "", recentDeliveries)
	if err != nil {
		return err
	}
	sec := &webhookSection{Webhooks: ws, Deliveries: ds}
	if d.Webhooks != nil {
		sec.NewSecret, sec.NewURL = d.Webhooks.NewSecret, d.Webhooks.NewURL
	}
	for _, t := range webhook.EventTypes {
		sec.Events = append(sec.Events, eventChoice{Type: t, Label: webhook.EventLabels[t], Checked: slices.Contains(checked, t)})
	}
	d.Webhooks = sec
	return nil
}

func (s *Server) createWebhookForm(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	events := r.PostForm["events"]
	if len(events) > len(webhook.EventTypes) {
		events = events[:len(webhook.EventTypes)+1] // still refused as unknown or repeated
	}
	wh, err := s.webhooks.Create(r.Context(), mustUser(r).ID, webhook.Input{URL: r.PostFormValue("webhook_url"), Events: events})
	var inv *webhook.InvalidError
	switch {
	case errors.As(err, &inv):
		s.renderAccount(w, r, http.StatusUnprocessableEntity, page{Form: formValues(r, "webhook_url"),
			Errors: map[string]string{"webhook_" + inv.Field: upperFirst(inv.Message) + "."}}, accountData{webhookChecked: events})
		return
	case errors.Is(err, webhook.ErrTooMany):
		s.renderAccount(w, r, http.StatusUnprocessableEntity, page{Form: formValues(r, "webhook_url"),
			Errors: map[string]string{"webhook_url": fmt.Sprintf("You have %d webhooks, the most an account may have. Delete one first.", webhook.MaxPerUser)}}, accountData{webhookChecked: events})
		return
	case err != nil:
		s.internalError(w, r, err)
		return
	}
	// Shown in this response only (no redirect), like a new token.
	s.renderAccount(w, r, http.StatusCreated, page{}, accountData{Webhooks: &webhookSection{NewSecret: wh.Secret, NewURL: wh.URL}})
}

func (s *Server) deleteWebhookForm(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	err := s.webhooks.Delete(r.Context(), mustUser(r).ID, r.PathValue("id"))
	if errors.Is(err, webhook.ErrNotFound) {
		s.errorPage(w, r, http.StatusNotFound, "No such webhook", "That webhook does not exist or was already deleted. Go back to your account page.")
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	http.Redirect(w, r, "/account?done=webhook-deleted#webhooks", http.StatusSeeOther)
}

func (s *Server) resendDeliveryForm(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	err := s.webhooks.Resend(r.Context(), mustUser(r).ID, "", r.PathValue("id"))
	switch {
	case errors.Is(err, webhook.ErrNotFound):
		s.errorPage(w, r, http.StatusNotFound, "No such delivery", "That delivery does not exist any more (finished ones are kept for a week). Go back to your account page.")
	case errors.Is(err, webhook.ErrPending):
		s.errorPage(w, r, http.StatusConflict, "Delivery still being tried", "Parley is still trying to deliver this event, so it cannot be sent again yet. Go back to your account page.")
	case err != nil:
		s.internalError(w, r, err)
	default:
		http.Redirect(w, r, "/account?done=webhook-resent#webhooks", http.StatusSeeOther)
	}
}

func webhookFlash(done string) string {
	switch done {
	case "webhook-deleted":
		return "Webhook deleted: its queued deliveries were dropped."
	case "webhook-resent":
		return "Delivery queued again: it goes out within a few seconds."
	}
	return ""
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
