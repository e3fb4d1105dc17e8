package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Webhook is an endpoint an account registered to be told of events in
// the channels it owns.
type Webhook struct {
	ID     string
	UserID string
	URL    string
	// Events are the event types sent to it (webhook.EventTypes).
	Events []string
	// Secret signs every delivery; stored in clear, as signing needs it.
	Secret    string
	CreatedAt time.Time
}

// OutboxEvent is one event to deliver to the webhooks of the owner of
// ChannelID that chose its Type. Payload is the JSON body sent as is.
type OutboxEvent struct {
	ID        string
	Type      string
	ChannelID string
	Payload   []byte
	CreatedAt time.Time
	// ExpiresAt is when delivery stops being retried.
	ExpiresAt time.Time
}

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// Delivery is one event on its way to one webhook (a row of the outbox).
type Delivery struct {
	ID         string
	WebhookID  string
	Seq        int64
	EventID    string
	EventType  string
	Payload    []byte
	CreatedAt  time.Time
	State      string
	Attempts   int
	NextAt     time.Time
	ExpiresAt  time.Time
	LastStatus int
	LastError  string
	FinishedAt time.Time // zero while pending
	// URL and Secret are the webhook's, filled by ClaimDeliveries and
	// RecentDeliveries (URL only).
	URL    string
	Secret string
}

const webhookColumns = "id, user_id, url, events, secret, created_at"

func scanWebhook(s scanner) (Webhook, error) {
	var w Webhook
	var events string
	var created int64
	if err := s.Scan(&w.ID, &w.UserID, &w.URL, &events, &w.Secret, &created); err != nil {
		return Webhook{}, err
	}
	w.Events = splitEvents(events)
	w.CreatedAt = fromMillis(created)
	return w, nil
}

func splitEvents(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}

// CreateWebhook stores a webhook. An unknown user yields an error wrapping
// ErrNotFound.
func (db *DB) CreateWebhook(ctx context.Context, w Webhook) error {
	_, err := db.sql.ExecContext(ctx, db.q(`INSERT INTO webhooks (`+webhookColumns+`) VALUES (?, ?, ?, ?, ?, ?)`),
		w.ID, w.UserID, w.URL, strings.Join(w.Events, ","), w.Secret, millis(w.CreatedAt))
	if err != nil {
		return fmt.Errorf("store: create webhook: %w", mapErr(err))
	}
	return nil
}

// WebhooksForUser lists a user's webhooks, oldest first.
func (db *DB) WebhooksForUser(ctx context.Context, userID string) ([]Webhook, error) {
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT `+webhookColumns+` FROM webhooks WHERE user_id = ? ORDER BY created_at, id`), userID)
	if err != nil {
		return nil, fmt.Errorf("store: webhooks: %w", err)
	}
	defer rows.Close()
	out := []Webhook{}
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			return nil, fmt.Errorf("store: webhooks: %w", err)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: webhooks: %w", err)
	}
	return out, nil
}

// WebhookByID returns one of a user's webhooks; anyone else's, or none,
// yields an error wrapping ErrNotFound.
func (db *DB) WebhookByID(ctx context.Context, userID, id string) (Webhook, error) {
	w, err := scanWebhook(db.sql.QueryRowContext(ctx, db.q(`SELECT `+webhookColumns+` FROM webhooks WHERE id = ? AND user_id = ?`), id, userID))
	if err != nil {
		return Webhook{}, fmt.Errorf("store: webhook %s: %w", id, mapErr(err))
	}
	return w, nil
}

// UpdateWebhook changes the URL and events of one of the user's webhooks
// (ErrNotFound for anyone else's). Deliveries already queued keep going
// to the new URL.
func (db *DB) UpdateWebhook(ctx context.Context, w Webhook) error {
	res, err := db.sql.ExecContext(ctx, db.q(`UPDATE webhooks SET url = ?, events = ? WHERE id = ? AND user_id = ?`),
		w.URL, strings.Join(w.Events, ","), w.ID, w.UserID)
	if err != nil {
		return fmt.Errorf("store: update webhook: %w", mapErr(err))
	}
	return expectRow(res, "store: update webhook %s", w.ID)
}

// DeleteWebhook removes one of the user's webhooks with its deliveries
// (ErrNotFound for anyone else's).
func (db *DB) DeleteWebhook(ctx context.Context, userID, id string) error {
	res, err := db.sql.ExecContext(ctx, db.q(`DELETE FROM webhooks WHERE id = ? AND user_id = ?`), id, userID)
	if err != nil {
		return fmt.Errorf("store: delete webhook: %w", mapErr(err))
	}
	return expectRow(res, "store: delete webhook %s", id)
}

// Enqueue writes events to the outbox in a transaction of their own: for
// facts that are not database changes (a call started, someone joined it).
//
// Events of channels whose owner has no webhook are dropped before any
// transaction begins: on SQLite a transaction takes the write lock, and
// calls come and go far more often than webhooks are registered.
func (db *DB) Enqueue(ctx context.Context, events ...OutboxEvent) error {
	events = slices.DeleteFunc(slices.Clone(events), func(ev OutboxEvent) bool {
		var n int
		err := db.sql.QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM webhooks w JOIN channels c ON c.owner_id = w.user_id WHERE c.id = ?`),
			ev.ChannelID).Scan(&n)
		return err == nil && n == 0 // on an error, let the transaction try
	})
	if len(events) == 0 {
		return nil
	}
	if err := db.inTx(ctx, func(tx *sql.Tx) error { return db.enqueue(ctx, tx, events) }); err != nil {
		return fmt.Errorf("store: enqueue events: %w", err)
	}
	return nil
}

// enqueue writes one outbox row per event and subscribed webhook of the
// channel's owner, inside tx: the events commit with the change that
// caused them, or not at all. An event no webhook wants writes nothing.
func (db *DB) enqueue(ctx context.Context, tx *sql.Tx, events []OutboxEvent) error {
	for _, ev := range events {
		rows, err := tx.QueryContext(ctx, db.q(`SELECT w.id, w.events FROM webhooks w JOIN channels c ON c.owner_id = w.user_id
			WHERE c.id = ? ORDER BY w.id`), ev.ChannelID)
		if err != nil {
			return fmt.Errorf("webhooks of channel %q: %w", ev.ChannelID, err)
		}
		var ids []string
		for rows.Next() {
			var id, evs string
			if err := rows.Scan(&id, &evs); err != nil {
				rows.Close()
				return fmt.Errorf("webhooks of channel %q: %w", ev.ChannelID, err)
			}
			if slices.Contains(splitEvents(evs), ev.Type) {
				ids = append(ids, id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("webhooks of channel %q: %w", ev.ChannelID, err)
		}
		// In id order, so two transactions lock webhooks in one order.
		for _, id := range ids {
			var seq int64
			if err := tx.QueryRowContext(ctx, db.q(`UPDATE webhooks SET next_seq = next_seq + 1 WHERE id = ? RETURNING next_seq`), id).Scan(&seq); err != nil {
				return fmt.Errorf("number delivery: %w", mapErr(err))
			}
			if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO webhook_deliveries
				(id, webhook_id, seq, event_id, event_type, payload, created_at, state, attempts, next_at, expires_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)`),
				newDeliveryID(), id, seq, ev.ID, ev.Type, string(ev.Payload), millis(ev.CreatedAt), DeliveryPending,
				millis(ev.CreatedAt), millis(ev.ExpiresAt)); err != nil {
				return fmt.Errorf("store delivery: %w", mapErr(err))
			}
		}
	}
	return nil
}

func newDeliveryID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return "dlv_" + hex.EncodeToString(b)
}

const deliveryColumns = `d.id, d.webhook_id, d.seq, d.event_id, d.event_type, d.payload, d.created_at, d.state, d.attempts,
	d.next_at, d.expires_at, d.last_status, d.last_error, d.finished_at, w.url, w.secret`

func scanDelivery(s scanner) (Delivery, error) {
	var d Delivery
	var payload string
	var created, next, expires, finished int64
	if err := s.Scan(&d.ID, &d.WebhookID, &d.Seq, &d.EventID, &d.EventType, &payload, &created, &d.State, &d.Attempts,
		&next, &expires, &d.LastStatus, &d.LastError, &finished, &d.URL, &d.Secret); err != nil {
		return Delivery{}, err
	}
	d.Payload = []byte(payload)
	d.CreatedAt, d.NextAt, d.ExpiresAt = fromMillis(created), fromMillis(next), fromMillis(expires)
	if finished != 0 {
		d.FinishedAt = fromMillis(finished)
	}
	return d, nil
}

// ClaimDeliveries takes up to limit deliveries due at now, at most one
// per webhook and only the first pending one of each (lowest seq), so a
// webhook's events go out in order and one failing blocks those after it.
// Each claimed row's next_at moves to now+lease: no other worker takes it
// before then, and if this one dies, it is due again after the lease.
//
// On PostgreSQL the rows are locked with FOR UPDATE SKIP LOCKED, so
// several servers can claim at once without taking the same row.
func (db *DB) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Delivery, error) {
	var out []Delivery
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		// Driven by the webhooks, each finding its head in one index seek
		// (webhook_deliveries_head), so the cost follows the number of
		// webhooks, not the backlog. SQLite, without statistics, would
		// rather scan every pending row: CROSS JOIN holds it to this
		// order (PostgreSQL plans by its statistics).
		join := "JOIN"
		if db.dialect == DialectSQLite {
			join = "CROSS JOIN"
		}
		query := `SELECT ` + deliveryColumns + ` FROM webhooks w ` + join + ` webhook_deliveries d ON d.webhook_id = w.id
			AND d.seq = (SELECT MIN(e.seq) FROM webhook_deliveries e WHERE e.webhook_id = w.id AND e.state = 'pending')
			WHERE d.state = 'pending' AND d.next_at <= ?
			ORDER BY d.next_at, d.id LIMIT ?`
		if db.dialect == DialectPostgres {
			query += ` FOR UPDATE OF d SKIP LOCKED`
		}
		rows, err := tx.QueryContext(ctx, db.q(query), millis(now), limit)
		if err != nil {
			return fmt.Errorf("select due: %w", err)
		}
		for rows.Next() {
			d, err := scanDelivery(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("select due: %w", err)
			}
			out = append(out, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("select due: %w", err)
		}
		until := millis(now.Add(lease))
		for i := range out {
			if _, err := tx.ExecContext(ctx, db.q(`UPDATE webhook_deliveries SET next_at = ?, attempts = attempts + 1 WHERE id = ?`),
				until, out[i].ID); err != nil {
				return fmt.Errorf("lease: %w", err)
			}
			out[i].Attempts++
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim deliveries: %w", err)
	}
	return out, nil
}

// DeliverySucceeded records that the webhook answered 2xx.
func (db *DB) DeliverySucceeded(ctx context.Context, id string, status int, at time.Time) error {
	_, err := db.sql.ExecContext(ctx, db.q(`UPDATE webhook_deliveries SET state = 'delivered', last_status = ?, last_error = '', finished_at = ?
		WHERE id = ? AND state = 'pending'`), status, millis(at), id)
	if err != nil {
		return fmt.Errorf("store: delivery %s succeeded: %w", id, err)
	}
	return nil
}

// DeliveryFailed records a failed attempt: the row is due again at next,
// or, with giveUp, is marked failed (which unblocks the webhook's later
// events).
func (db *DB) DeliveryFailed(ctx context.Context, id string, status int, why string, next time.Time, giveUp bool, at time.Time) error {
	var err error
	if giveUp {
		_, err = db.sql.ExecContext(ctx, db.q(`UPDATE webhook_deliveries SET state = 'failed', last_status = ?, last_error = ?, finished_at = ?
			WHERE id = ? AND state = 'pending'`), status, why, millis(at), id)
	} else {
		_, err = db.sql.ExecContext(ctx, db.q(`UPDATE webhook_deliveries SET last_status = ?, last_error = ?, next_at = ?
			WHERE id = ? AND state = 'pending'`), status, why, millis(next), id)
	}
	if err != nil {
		return fmt.Errorf("store: delivery %s failed: %w", id, err)
	}
	return nil
}

// RecentDeliveries returns the user's newest deliveries, of one webhook
// (or of all with webhookID ""), newest first; Secret is left empty.
func (db *DB) RecentDeliveries(ctx context.Context, userID, webhookID string, limit int) ([]Delivery, error) {
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT `+deliveryColumns+` FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
		WHERE w.user_id = ? AND (? = '' OR w.id = ?) ORDER BY d.created_at DESC, d.seq DESC LIMIT ?`), userID, webhookID, webhookID, limit)
	if err != nil {
		return nil, fmt.Errorf("store: recent deliveries: %w", err)
	}
	defer rows.Close()
	out := []Delivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("store: recent deliveries: %w", err)
		}
		d.Secret = ""
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: recent deliveries: %w", err)
	}
	return out, nil
}

// WebhookDeliveries returns one webhook's deliveries in seq order, for
// tests and tools.
func (db *DB) WebhookDeliveries(ctx context.Context, webhookID string) ([]Delivery, error) {
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT `+deliveryColumns+` FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
		WHERE d.webhook_id = ? ORDER BY d.seq`), webhookID)
	if err != nil {
		return nil, fmt.Errorf("store: deliveries: %w", err)
	}
	defer rows.Close()
	out := []Delivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("store: deliveries: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// ResendDelivery makes one of the user's deliveries (of webhookID, unless
// that is "") pending again, due at
// once, with a fresh retry window until expires (ErrNotFound for anyone
// else's). Being the webhook's oldest pending row again, it goes out
// before the events queued after it.
//
// A delivery still pending is being tried already: that yields an error
// wrapping ErrConflict, and the row is left alone (resetting its time
// could send it twice at once).
func (db *DB) ResendDelivery(ctx context.Context, userID, webhookID, id string, now, expires time.Time) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var state string
		err := tx.QueryRowContext(ctx, db.q(`SELECT d.state FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
			WHERE d.id = ? AND w.user_id = ? AND (? = '' OR w.id = ?)`), id, userID, webhookID, webhookID).Scan(&state)
		if err != nil {
			return mapErr(err)
		}
		if state == DeliveryPending {
			return fmt.Errorf("still being tried: %w", ErrConflict)
		}
		_, err = tx.ExecContext(ctx, db.q(`UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_at = ?, expires_at = ?,
			last_error = '', finished_at = 0 WHERE id = ?`), millis(now), millis(expires), id)
		return mapErr(err)
	})
	if err != nil {
		return fmt.Errorf("store: resend delivery %s: %w", id, err)
	}
	return nil
}

// PruneDeliveries deletes finished deliveries older than before and
// returns how many.
func (db *DB) PruneDeliveries(ctx context.Context, before time.Time) (int64, error) {
	res, err := db.sql.ExecContext(ctx, db.q(`DELETE FROM webhook_deliveries WHERE state <> 'pending' AND finished_at < ?`), millis(before))
	if err != nil {
		return 0, fmt.Errorf("store: prune deliveries: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
