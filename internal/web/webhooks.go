package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/parley/parley/internal/store"
	"github.com/parley/parley/internal/webhook"
)

// maxWebhookBody bounds a webhook API request's JSON body.
const maxWebhookBody = 16 << 10

// recentDeliveries is how many deliveries the account page and the API
// list.
const recentDeliveries = 50

// SetWebhooks enables the webhook routes; call it before serving.
func (s *Server) SetWebhooks(w *webhook.Service) { s.webhooks = w }

func (s *Server) routeWebhooks(mux *http.ServeMux) {
	mux.HandleFunc("POST /account/webhooks", s.requirePage(s.withWebhooks(s.createWebhookForm)))
	mux.HandleFunc("POST /account/webhooks/{id}/delete", s.requirePage(s.withWebhooks(s.deleteWebhookForm)))
	mux.HandleFunc("POST /account/webhooks/deliveries/{id}/resend", s.requirePage(s.withWebhooks(s.resendDeliveryForm)))

	mux.HandleFunc("GET /api/v1/webhooks", s.requireAPI(s.withWebhooks(s.apiListWebhooks)))
	mux.HandleFunc("POST /api/v1/webhooks", s.requireAPI(s.withWebhooks(s.apiCreateWebhook)))
	mux.HandleFunc("GET /api/v1/webhooks/{id}", s.requireAPI(s.withWebhooks(s.apiGetWebhook)))
	mux.HandleFunc("PATCH /api/v1/webhooks/{id}", s.requireAPI(s.withWebhooks(s.apiUpdateWebhook)))
	mux.HandleFunc("DELETE /api/v1/webhooks/{id}", s.requireAPI(s.withWebhooks(s.apiDeleteWebhook)))
	mux.HandleFunc("GET /api/v1/webhooks/{id}/deliveries", s.requireAPI(s.withWebhooks(s.apiDeliveries)))
	mux.HandleFunc("POST /api/v1/webhooks/{id}/deliveries/{delivery}/resend", s.requireAPI(s.withWebhooks(s.apiResend)))
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

// The JSON API (docs/api.md#webhooks).

// apiWebhook is a webhook as the API shows it; Secret only when created.
type apiWebhook struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	Events    []string  `json:"events"`
	CreatedAt time.Time `json:"created_at"`
	Secret    string    `json:"secret,omitempty"`
}

func toAPIWebhook(w store.Webhook) apiWebhook {
	return apiWebhook{ID: w.ID, URL: w.URL, Events: w.Events, CreatedAt: w.CreatedAt, Secret: w.Secret}
}

// apiDelivery is a delivery as the API shows it.
type apiDelivery struct {
	ID         string     `json:"id"`
	WebhookID  string     `json:"webhook_id"`
	EventID    string     `json:"event_id"`
	EventType  string     `json:"event_type"`
	CreatedAt  time.Time  `json:"created_at"`
	State      string     `json:"state"`
	Attempts   int        `json:"attempts"`
	NextAt     *time.Time `json:"next_attempt_at,omitempty"`
	LastStatus int        `json:"last_status,omitempty"`
	LastError  string     `json:"last_error,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

func toAPIDelivery(d store.Delivery) apiDelivery {
	a := apiDelivery{ID: d.ID, WebhookID: d.WebhookID, EventID: d.EventID, EventType: d.EventType, CreatedAt: d.CreatedAt,
		State: d.State, Attempts: d.Attempts, LastStatus: d.LastStatus, LastError: d.LastError}
	if d.State == store.DeliveryPending {
		a.NextAt = &d.NextAt
	}
	if !d.FinishedAt.IsZero() {
		a.FinishedAt = &d.FinishedAt
	}
	return a
}

// webhookInput is the body of create and update. Events is a pointer so
// that an update can leave it out.
type webhookInput struct {
	URL    string    `json:"url"`
	Events *[]string `json:"events"`
}

// readWebhookInput decodes a bounded JSON body; false means an answer
// was sent.
func readWebhookInput(w http.ResponseWriter, r *http.Request) (webhook.Input, bool) {
	var in webhookInput
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSONError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is over %d bytes", maxWebhookBody))
			return webhook.Input{}, false
		}
		writeJSONError(w, http.StatusBadRequest, "the body must be a JSON object {\"url\": \"https://…\", \"events\": [\"call.started\", …]}: "+err.Error())
		return webhook.Input{}, false
	}
	out := webhook.Input{URL: in.URL}
	if in.Events != nil {
		out.Events = *in.Events
		if out.Events == nil {
			out.Events = []string{} // "events": null is an empty choice, refused
		}
		if len(out.Events) > 2*len(webhook.EventTypes) {
			writeJSONError(w, http.StatusUnprocessableEntity, "events: too many entries")
			return webhook.Input{}, false
		}
	}
	return out, true
}

// webhookAPIError answers a webhook service error.
func (s *Server) webhookAPIError(w http.ResponseWriter, r *http.Request, err error) {
	var inv *webhook.InvalidError
	switch {
	case errors.As(err, &inv):
		writeJSONError(w, http.StatusUnprocessableEntity, inv.Field+": "+inv.Message)
	case errors.Is(err, webhook.ErrTooMany):
		writeJSONError(w, http.StatusConflict, err.Error())
	case errors.Is(err, webhook.ErrNotFound):
		writeJSONError(w, http.StatusNotFound, "no such webhook or delivery")
	case errors.Is(err, webhook.ErrPending):
		writeJSONError(w, http.StatusConflict, "this delivery is still being tried; it can be re-sent once it has succeeded or been given up")
	default:
		s.log.Error("webhook API", "method", r.Method, "path", r.URL.Path, "user_id", mustUser(r).ID, "err", err)
		writeJSONError(w, http.StatusInternalServerError, "internal error")
	}
}

func (s *Server) apiListWebhooks(w http.ResponseWriter, r *http.Request) {
	ws, err := s.webhooks.List(r.Context(), mustUser(r).ID)
	if err != nil {
		s.webhookAPIError(w, r, err)
		return
	}
	out := make([]apiWebhook, 0, len(ws))
	for _, wh := range ws {
		out = append(out, toAPIWebhook(wh))
	}
	writeJSON(w, http.StatusOK, map[string]any{"webhooks": out})
}

func (s *Server) apiCreateWebhook(w http.ResponseWriter, r *http.Request) {
	in, ok := readWebhookInput(w, r)
	if !ok {
		return
	}
	wh, err := s.webhooks.Create(r.Context(), mustUser(r).ID, in)
	if err != nil {
		s.webhookAPIError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/webhooks/"+wh.ID)
	writeJSON(w, http.StatusCreated, toAPIWebhook(wh))
}

func (s *Server) apiGetWebhook(w http.ResponseWriter, r *http.Request) {
	wh, err := s.webhooks.Get(r.Context(), mustUser(r).ID, r.PathValue("id"))
	if err != nil {
		s.webhookAPIError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toAPIWebhook(wh))
}

func (s *Server) apiUpdateWebhook(w http.ResponseWriter, r *http.Request) {
	in, ok := readWebhookInput(w, r)
	if !ok {
		return
	}
	wh, err := s.webhooks.Update(r.Context(), mustUser(r).ID, r.PathValue("id"), in)
	if err != nil {
		s.webhookAPIError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toAPIWebhook(wh))
}

func (s *Server) apiDeleteWebhook(w http.ResponseWriter, r *http.Request) {
	if err := s.webhooks.Delete(r.Context(), mustUser(r).ID, r.PathValue("id")); err != nil {
		s.webhookAPIError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) apiDeliveries(w http.ResponseWriter, r *http.Request) {
	ds, err := s.webhooks.Deliveries(r.Context(), mustUser(r).ID, r.PathValue("id"), recentDeliveries)
	if err != nil {
		s.webhookAPIError(w, r, err)
		return
	}
	out := make([]apiDelivery, 0, len(ds))
	for _, d := range ds {
		out = append(out, toAPIDelivery(d))
	}
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": out})
}

func (s *Server) apiResend(w http.ResponseWriter, r *http.Request) {
	if err := s.webhooks.Resend(r.Context(), mustUser(r).ID, r.PathValue("id"), r.PathValue("delivery")); err != nil {
		s.webhookAPIError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}
