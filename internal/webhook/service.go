package webhook

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/parley/parley/internal/store"
)

// MaxPerUser bounds the webhooks one account may have.
const MaxPerUser = 10

// Errors the API and pages turn into status codes.
var (
	// ErrNotFound: no such webhook or delivery of this user.
	ErrNotFound = errors.New("webhook: not found")
	// ErrTooMany: the account has MaxPerUser webhooks already.
	ErrTooMany = fmt.Errorf("webhook: an account may have at most %d webhooks", MaxPerUser)
	// ErrPending: the delivery is still being tried; it cannot be re-sent.
	ErrPending = errors.New("webhook: this delivery is still being tried")
)

// InvalidError is a webhook the user described wrongly: Field is "url"
// or "events".
type InvalidError struct {
	Field, Message string
}

func (e *InvalidError) Error() string { return "webhook: " + e.Field + ": " + e.Message }

// Config tunes the webhooks; zero fields take the defaults given.
type Config struct {
	// AllowPrivate lets webhooks reach loopback and private addresses
	// (--webhook-allow-private): for tests and LAN-only servers.
	AllowPrivate bool
	// RetryMin is the wait after the first failure (10 s), doubled after
	// each next one up to RetryMax (1 h), with jitter.
	RetryMin, RetryMax time.Duration
	// RetryFor is how long an event is retried before it is given up
	// (24 h).
	RetryFor time.Duration
	// Timeout bounds one delivery attempt, connection included (10 s).
	Timeout time.Duration
	// Poll is how often the worker looks for due deliveries when not
	// kicked (1 s).
	Poll time.Duration
	// Workers is how many deliveries go out at once (4).
	Workers int
	// Keep is how long finished deliveries stay listed (7 days).
	Keep time.Duration
}

func (c Config) withDefaults() Config {
	if c.RetryMin <= 0 {
		c.RetryMin = 10 * time.Second
	}
	if c.RetryMax <= 0 {
		c.RetryMax = time.Hour
	}
	c.RetryMax = max(c.RetryMax, c.RetryMin)
	if c.RetryFor <= 0 {
		c.RetryFor = DefaultRetryDuration
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Poll <= 0 {
		c.Poll = time.Second
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.Keep <= 0 {
		c.Keep = 7 * 24 * time.Hour
	}
	return c
}

// Service manages accounts' webhooks and makes their events.
type Service struct {
	cfg Config
	db  *store.DB
	log *slog.Logger
	// kick wakes the worker (capacity 1): an event was just written.
	kick chan struct{}
}

// New returns the webhook service over db.
func New(cfg Config, db *store.DB, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg.withDefaults(), db: db, log: log, kick: make(chan struct{}, 1)}
}

// Kick wakes the delivery worker: an event is waiting.
func (s *Service) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Event builds an event for the outbox (NewEvent with the service's
// retry window, now).
func (s *Service) Event(typ, channelID string, data any) (store.OutboxEvent, error) {
	return NewEvent(typ, channelID, time.Now(), s.cfg.RetryFor, data)
}

// Emit writes an event to the outbox now, in a transaction of its own,
// and wakes the worker: for facts that are not database changes. It
// returns once the event is stored (or failed to be).
func (s *Service) Emit(ctx context.Context, typ, channelID string, data any) error {
	ev, err := s.Event(typ, channelID, data)
	if err != nil {
		return err
	}
	if err := s.db.Enqueue(ctx, ev); err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	s.Kick()
	return nil
}

// Input is what a user gives to create or change a webhook.
type Input struct {
	URL    string
	Events []string
}

func (s *Service) check(in Input) (string, []string, error) {
	u, err := ParseURL(in.URL, s.cfg.AllowPrivate)
	if err != nil {
		msg := err.Error()
		if errors.Is(err, ErrPrivateAddress) {
			msg = strings.TrimPrefix(msg, "webhook: ") + " (the server's operator can allow this with --webhook-allow-private)"
		}
		return "", nil, &InvalidError{Field: "url", Message: msg}
	}
	if len(in.Events) == 0 {
		return "", nil, &InvalidError{Field: "events", Message: "choose at least one event"}
	}
	var evs []string
	for _, e := range in.Events {
		if !ValidEvent(e) {
			return "", nil, &InvalidError{Field: "events", Message: fmt.Sprintf("unknown event %q: choose among %s", e, strings.Join(EventTypes, ", "))}
		}
		if !slices.Contains(evs, e) {
			evs = append(evs, e)
		}
	}
	// Stored in the canonical order.
	slices.SortFunc(evs, func(a, b string) int { return slices.Index(EventTypes, a) - slices.Index(EventTypes, b) })
	return u.String(), evs, nil
}

// Create registers a webhook for user and returns it with its secret,
// which is shown only this once.
func (s *Service) Create(ctx context.Context, userID string, in Input) (store.Webhook, error) {
	url, evs, err := s.check(in)
	if err != nil {
		return store.Webhook{}, err
	}
	have, err := s.db.WebhooksForUser(ctx, userID)
	if err != nil {
		return store.Webhook{}, fmt.Errorf("webhook: %w", err)
	}
	if len(have) >= MaxPerUser {
		return store.Webhook{}, ErrTooMany
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	w := store.Webhook{
		ID: newID("wh_"), UserID: userID, URL: url, Events: evs,
		Secret:    "whsec_" + base64.RawURLEncoding.EncodeToString(secret),
		CreatedAt: time.Now().UTC().Truncate(time.Millisecond),
	}
	if err := s.db.CreateWebhook(ctx, w); err != nil {
		return store.Webhook{}, fmt.Errorf("webhook: %w", err)
	}
	s.log.Info("webhook created", "user_id", userID, "webhook_id", w.ID)
	return w, nil
}

// List returns the user's webhooks, without their secrets.
func (s *Service) List(ctx context.Context, userID string) ([]store.Webhook, error) {
	ws, err := s.db.WebhooksForUser(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	for i := range ws {
		ws[i].Secret = ""
	}
	return ws, nil
}

// Get returns one of the user's webhooks, without its secret.
func (s *Service) Get(ctx context.Context, userID, id string) (store.Webhook, error) {
	w, err := s.db.WebhookByID(ctx, userID, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Webhook{}, ErrNotFound
	}
	if err != nil {
		return store.Webhook{}, fmt.Errorf("webhook: %w", err)
	}
	w.Secret = ""
	return w, nil
}

// Update changes one of the user's webhooks; empty fields of in keep
// their value.
func (s *Service) Update(ctx context.Context, userID, id string, in Input) (store.Webhook, error) {
	w, err := s.Get(ctx, userID, id)
	if err != nil {
		return store.Webhook{}, err
	}
	if in.URL == "" {
		in.URL = w.URL
	}
	if in.Events == nil {
		in.Events = w.Events
	}
	w.URL, w.Events, err = s.check(in)
	if err != nil {
		return store.Webhook{}, err
	}
	if err := s.db.UpdateWebhook(ctx, w); errors.Is(err, store.ErrNotFound) {
		return store.Webhook{}, ErrNotFound
	} else if err != nil {
		return store.Webhook{}, fmt.Errorf("webhook: %w", err)
	}
	return w, nil
}

// Delete removes one of the user's webhooks and its queued deliveries.
func (s *Service) Delete(ctx context.Context, userID, id string) error {
	err := s.db.DeleteWebhook(ctx, userID, id)
	if errors.Is(err, store.ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	s.log.Info("webhook deleted", "user_id", userID, "webhook_id", id)
	return nil
}

// Deliveries returns the user's newest deliveries, newest first: of one
// webhook, or of all with webhookID "".
func (s *Service) Deliveries(ctx context.Context, userID, webhookID string, limit int) ([]store.Delivery, error) {
	if webhookID != "" {
		if _, err := s.Get(ctx, userID, webhookID); err != nil {
			return nil, err
		}
	}
	ds, err := s.db.RecentDeliveries(ctx, userID, webhookID, limit)
	if err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	return ds, nil
}

// Resend queues one of the user's finished deliveries again, due at once
// (ahead of its webhook's later events), with a fresh retry window. With
// webhookID not "", the delivery must be that webhook's.
func (s *Service) Resend(ctx context.Context, userID, webhookID, id string) error {
	now := time.Now()
	err := s.db.ResendDelivery(ctx, userID, webhookID, id, now, now.Add(s.cfg.RetryFor))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return ErrNotFound
	case errors.Is(err, store.ErrConflict):
		return ErrPending
	case err != nil:
		return fmt.Errorf("webhook: %w", err)
	}
	s.Kick()
	return nil
}
