package server

import (
	"context"
	"time"

	"github.com/parley/parley/internal/account"
	"github.com/parley/parley/internal/room"
	"github.com/parley/parley/internal/store"
	"github.com/parley/parley/internal/webhook"
)

// emitTimeout bounds writing one call event to the outbox from the room
// goroutine (a stalled database must not freeze a call for long).
const emitTimeout = 5 * time.Second

// startWebhooks makes the webhook service and has the account layer
// write membership events in its own transactions.
func (s *Server) startWebhooks(acfg *account.Config) {
	s.webhooks = webhook.New(webhook.Config{
		AllowPrivate: s.cfg.WebhookAllowPrivate,
		RetryMin:     s.cfg.WebhookRetryMin,
		RetryMax:     s.cfg.WebhookRetryMax,
		Timeout:      s.cfg.WebhookTimeout,
	}, s.db, s.log.With("part", "webhook"))
	if acfg.MemberEvent == nil {
		acfg.MemberEvent = func(channelID string, u store.User, how string) (store.OutboxEvent, error) {
			typ := webhook.MemberAdded
			if how == "removed" || how == "left" {
				typ = webhook.MemberRemoved
			}
			return s.webhooks.Event(typ, channelID, webhook.MemberData{UserID: u.ID, Username: u.Username, DisplayName: u.DisplayName, How: how})
		}
	}
}

// runWebhooks starts the delivery worker; stopWebhooks ends it.
func (s *Server) runWebhooks() {
	ctx, cancel := context.WithCancel(context.Background())
	s.stopWebhookWorker = cancel
	s.webhookDone.Add(1)
	go func() {
		defer s.webhookDone.Done()
		s.webhooks.Run(ctx)
	}()
}

func (s *Server) stopWebhooks() {
	if s.stopWebhookWorker != nil {
		s.stopWebhookWorker()
		s.webhookDone.Wait()
	}
}

// callEvent writes a call's fact to the outbox at once, on the room's
// goroutine, so that the events of one call are stored in the order they
// happened and a crash right after the fact cannot lose it.
func (s *Server) callEvent(ev room.CallEvent) {
	var data any
	switch ev.Kind {
	case room.EventCallStarted:
		data = webhook.CallData{CallID: ev.CallID, StartedAt: ev.StartedAt.UTC()}
	case room.EventCallEnded:
		end := ev.At.UTC()
		data = webhook.CallData{CallID: ev.CallID, StartedAt: ev.StartedAt.UTC(), EndedAt: &end}
	case room.EventParticipantJoined, room.EventParticipantLeft:
		p := ev.Participant
		data = webhook.ParticipantData{CallID: ev.CallID, ParticipantID: p.ID, UserID: p.UserID, Username: p.Username, Name: p.Name, Role: p.Role, Reason: ev.Reason}
	default:
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), emitTimeout)
	defer cancel()
	if err := s.webhooks.Emit(ctx, ev.Kind, ev.ChannelID, data); err != nil {
		s.log.Error("write call event to the webhook outbox", "channel_id", ev.ChannelID, "event", ev.Kind, "err", err)
	}
}

// takeEvent builds a studio take's finish event (written with the take).
func (s *Server) takeEvent(channelID string, k store.Take) (store.OutboxEvent, error) {
	return s.webhooks.Event(webhook.StudioTakeFinished, channelID, webhook.TakeData{TakeID: k.ID, TrackID: k.TrackID, SongID: k.SongID, UserID: k.UserID, DurationMS: k.DurationMS})
}

// recordingEvent reports a finished call recording (its files are on
// disk, not in the database: written at the moment it stops).
func (s *Server) recordingEvent(channelID, id, state string, started time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), emitTimeout)
	defer cancel()
	data := webhook.RecordingData{RecordingID: id, State: state, DurationMS: time.Since(started).Milliseconds()}
	if err := s.webhooks.Emit(ctx, webhook.RecordingFinished, channelID, data); err != nil {
		s.log.Error("write recording event to the webhook outbox", "channel_id", channelID, "err", err)
	}
}

// Webhooks is the server's webhook service, for tests.
func (s *Server) Webhooks() *webhook.Service { return s.webhooks }
