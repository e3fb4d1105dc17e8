package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/parley/parley/internal/store"
	"github.com/parley/parley/internal/webhook"
)

func (a *API) routeWebhooks() {
	a.handle("GET", "/webhooks", a.listWebhooks)
	a.handle("POST", "/webhooks", a.createWebhook)
	a.handle("GET", "/webhooks/{id}", a.getWebhook)
	a.handle("PATCH", "/webhooks/{id}", a.updateWebhook)
	a.handle("DELETE", "/webhooks/{id}", a.deleteWebhook)
	a.handle("GET", "/webhooks/{id}/deliveries", a.listDeliveries)
	a.handle("POST", "/webhooks/{id}/deliveries/{delivery}/resend", a.resendDelivery)
}

// Webhook is a webhook as the API shows it; Secret only in the answer
// that created it.
type Webhook struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	Events    []string  `json:"events"`
	CreatedAt time.Time `json:"createdAt"`
	Secret    string    `json:"secret,omitempty"`
}

func webhookOut(w store.Webhook) Webhook {
	return Webhook{ID: w.ID, URL: w.URL, Events: w.Events, CreatedAt: w.CreatedAt.UTC(), Secret: w.Secret}
}

// Delivery is one event on its way to a webhook.
type Delivery struct {
	ID            string     `json:"id"`
	WebhookID     string     `json:"webhookId"`
	EventID       string     `json:"eventId"`
	EventType     string     `json:"eventType"`
	CreatedAt     time.Time  `json:"createdAt"`
	State         string     `json:"state"`
	Attempts      int        `json:"attempts"`
	NextAttemptAt *time.Time `json:"nextAttemptAt,omitempty"`
	LastStatus    int        `json:"lastStatus,omitempty"`
	LastError     string     `json:"lastError,omitempty"`
	FinishedAt    *time.Time `json:"finishedAt,omitempty"`
}

func deliveryOut(d store.Delivery) Delivery {
	out := Delivery{ID: d.ID, WebhookID: d.WebhookID, EventID: d.EventID, EventType: d.EventType, CreatedAt: d.CreatedAt.UTC(),
		State: d.State, Attempts: d.Attempts, LastStatus: d.LastStatus, LastError: d.LastError}
	if d.State == store.DeliveryPending {
		next := d.NextAt.UTC()
		out.NextAttemptAt = &next
	}
	if !d.FinishedAt.IsZero() {
		f := d.FinishedAt.UTC()
		out.FinishedAt = &f
	}
	return out
}

// webhooks returns the service, or a 404 problem on a server without.
func (a *API) webhooks() (*webhook.Service, error) {
	if a.d.Webhooks == nil {
		return nil, Errorf(http.StatusNotFound, "This server does not offer webhooks.")
	}
	return a.d.Webhooks, nil
}

// webhookError turns the webhook service's errors into problems.
func webhookError(err error) error {
	var inv *webhook.InvalidError
	switch {
	case errors.As(err, &inv):
		return Invalid(inv.Field, inv.Message)
	case errors.Is(err, webhook.ErrTooMany):
		return Errorf(http.StatusConflict, "You have %d webhooks, the most an account may have: delete one first.", webhook.MaxPerUser)
	case errors.Is(err, webhook.ErrNotFound):
		return Errorf(http.StatusNotFound, "No such webhook or delivery of yours.")
	case errors.Is(err, webhook.ErrPending):
		return Errorf(http.StatusConflict, "This delivery is still being tried: it can be re-sent once it succeeded or was given up.")
	}
	return err
}

// webhookIn is the body of create (both members required) and update
// (either may be left out).
type webhookIn struct {
	URL    *string   `json:"url"`
	Events *[]string `json:"events"`
}

func (in webhookIn) input() (webhook.Input, error) {
	var out webhook.Input
	if in.URL != nil {
		out.URL = *in.URL
		if out.URL == "" {
			return out, Invalid("url", "the URL is required")
		}
	}
	if in.Events != nil {
		out.Events = *in.Events
		if out.Events == nil {
			out.Events = []string{}
		}
		if len(out.Events) > 2*len(webhook.EventTypes) {
			return out, Invalid("events", fmt.Sprintf("at most %d events", len(webhook.EventTypes)))
		}
	}
	return out, nil
}

func (a *API) listWebhooks(w http.ResponseWriter, r *http.Request, c Caller) error {
	svc, err := a.webhooks()
	if err != nil {
		return err
	}
	ws, err := svc.List(r.Context(), c.User.ID)
	if err != nil {
		return err
	}
	out := make([]Webhook, len(ws))
	for i, wh := range ws {
		out[i] = webhookOut(wh)
	}
	writeJSON(w, http.StatusOK, newList(out, ""))
	return nil
}

func (a *API) createWebhook(w http.ResponseWriter, r *http.Request, c Caller) error {
	svc, err := a.webhooks()
	if err != nil {
		return err
	}
	var body webhookIn
	if err := decode(r, &body); err != nil {
		return err
	}
	if body.URL == nil {
		return Invalid("url", "the URL is required")
	}
	if body.Events == nil {
		return Invalid("events", "choose at least one event")
	}
	in, err := body.input()
	if err != nil {
		return err
	}
	wh, err := svc.Create(r.Context(), c.User.ID, in)
	if err != nil {
		return webhookError(err)
	}
	w.Header().Set("Location", Prefix+"/webhooks/"+wh.ID)
	writeJSON(w, http.StatusCreated, webhookOut(wh))
	return nil
}

func (a *API) getWebhook(w http.ResponseWriter, r *http.Request, c Caller) error {
	svc, err := a.webhooks()
	if err != nil {
		return err
	}
	wh, err := svc.Get(r.Context(), c.User.ID, r.PathValue("id"))
	if err != nil {
		return webhookError(err)
	}
	writeJSON(w, http.StatusOK, webhookOut(wh))
	return nil
}

func (a *API) updateWebhook(w http.ResponseWriter, r *http.Request, c Caller) error {
	svc, err := a.webhooks()
	if err != nil {
		return err
	}
	var body webhookIn
	if err := decode(r, &body); err != nil {
		return err
	}
	in, err := body.input()
	if err != nil {
		return err
	}
	wh, err := svc.Update(r.Context(), c.User.ID, r.PathValue("id"), in)
	if err != nil {
		return webhookError(err)
	}
	writeJSON(w, http.StatusOK, webhookOut(wh))
	return nil
}

func (a *API) deleteWebhook(w http.ResponseWriter, r *http.Request, c Caller) error {
	svc, err := a.webhooks()
	if err != nil {
		return err
	}
	if err := svc.Delete(r.Context(), c.User.ID, r.PathValue("id")); err != nil {
		return webhookError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) listDeliveries(w http.ResponseWriter, r *http.Request, c Caller) error {
	svc, err := a.webhooks()
	if err != nil {
		return err
	}
	limit, after, err := pageParams(r)
	if err != nil {
		return err
	}
	if after != "" {
		return Errorf(http.StatusBadRequest, "Deliveries come in one page, the newest `limit`: leave cursor out.")
	}
	ds, err := svc.Deliveries(r.Context(), c.User.ID, r.PathValue("id"), limit)
	if err != nil {
		return webhookError(err)
	}
	out := make([]Delivery, len(ds))
	for i, d := range ds {
		out[i] = deliveryOut(d)
	}
	writeJSON(w, http.StatusOK, newList(out, ""))
	return nil
}

func (a *API) resendDelivery(w http.ResponseWriter, r *http.Request, c Caller) error {
	svc, err := a.webhooks()
	if err != nil {
		return err
	}
	if err := svc.Resend(r.Context(), c.User.ID, r.PathValue("id"), r.PathValue("delivery")); err != nil {
		return webhookError(err)
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}
