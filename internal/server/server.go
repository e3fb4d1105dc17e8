// Package server assembles a whole Parley server from a Config: database,
// accounts, rooms and the HTTP edge. cmd/parley and servertest both start
// servers through it, so tests run exactly what users run.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/parley/parley/internal/account"
	"github.com/parley/parley/internal/api"
	"github.com/parley/parley/internal/clientip"
	"github.com/parley/parley/internal/cluster"
	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/connlimit"
	"github.com/parley/parley/internal/jointoken"
	"github.com/parley/parley/internal/mail"
	"github.com/parley/parley/internal/media"
	"github.com/parley/parley/internal/pairing"
	"github.com/parley/parley/internal/recording"
	"github.com/parley/parley/internal/room"
	"github.com/parley/parley/internal/signaling"
	"github.com/parley/parley/internal/store"
	"github.com/parley/parley/internal/studio"
	"github.com/parley/parley/internal/turnserver"
	"github.com/parley/parley/internal/web"
	"github.com/parley/parley/internal/webhook"
)

// Server is a running-or-ready Parley server.
type Server struct {
	cfg          config.Config
	log          *slog.Logger
	db           *store.DB
	accounts     *account.Service
	rooms        *room.Manager
	sfu          *media.SFU
	turn         *turnserver.Server // nil unless the embedded relay runs
	http         *http.Server
	proxies      clientip.Proxies
	connsRefused prometheus.Counter // shared by the connlimit listeners

	turnSecretValue string
	turnPorts       turnPorts
	members         memberCache // hasChannel's answers (turn.go)
	tls             *tls.Config
	studio          *studio.Service
	pairing         *pairing.Hub // "Send to a device"

	joinTokens *jointoken.Service // join tokens (issue 15)

	recordings *recording.Service    // call recordings (recording.go)
	composites *recording.Compositor // nil without ffmpeg

	node     *cluster.Node // nil unless --redis (cluster.go)
	nodeOnce sync.Once

	stopJanitor context.CancelFunc
	janitorDone sync.WaitGroup

	webhooks          *webhook.Service // webhooks.go
	stopWebhookWorker context.CancelFunc
	webhookDone       sync.WaitGroup
}

// New opens the database (running migrations) and builds every part. The
// caller must Shutdown it. On error, everything New opened (database,
// media and TURN sockets) is closed again, so a failed start leaves no
// port bound and can simply be retried.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, acfg account.Config) (_ *Server, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// undo closes what was opened so far, newest first, if New fails.
	var undo []func() error
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				if cerr := undo[i](); cerr != nil {
					log.Warn("close after a failed start", "err", cerr)
				}
			}
		}
	}()
	db, err := store.Open(ctx, cfg.DatabaseURL, cfg.DataDir, log.With("part", "store"))
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	undo = append(undo, db.Close)
	s := &Server{cfg: cfg, log: log, db: db}
	if acfg.SessionTTL == 0 {
		acfg.SessionTTL = cfg.SessionTTL
	}
	s.wireAccount(&acfg)
	s.startWebhooks(&acfg)
	reg := prometheus.NewRegistry()
	if err := s.joinCluster(&acfg, reg); err != nil {
		return nil, err
	}
	undo = append(undo, s.closeNode)
	if cfg.SMTPURL != "" && acfg.Mailer == nil {
		sender, err := mail.New(cfg.SMTPURL, cfg.MailFrom)
		if err != nil {
			return nil, err
		}
		acfg.Mailer = sender
	} else if cfg.SMTPURL == "" {
		log.Info("no mail server configured (--smtp-url): password reset links will be written to this log for you to pass on, and email addresses are not verified")
	}
	s.accounts = account.New(acfg, db, log.With("part", "account"), nil)

	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.accounts.Register(reg)
	s.proxies, _ = clientip.ParseProxies(cfg.TrustedProxies) // Validate checked it
	s.connsRefused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "parley_http_connections_refused_total",
		Help: "connections closed at once because their address already held --max-connections-per-ip.",
	})
	reg.MustRegister(s.connsRefused)
	s.sfu, err = media.New(media.Config{
		UDPPort:      cfg.RTCUDPPort,
		TCPPort:      cfg.RTCTCPPort,
		ListenIP:     cfg.RTCListenIP,
		PublicIPs:    cfg.PublicIPs,
		Interfaces:   cfg.RTCInterfaces,
		LoopbackOnly: cfg.RTCLoopbackOnly,
	}, log.With("part", "media"), reg)
	if err != nil {
		return nil, fmt.Errorf("start the media server: %w", err)
	}
	undo = append(undo, s.sfu.Close)
	// Resume tokens must outlive a restart, as the clients' ids do: key
	// them with the secret kept in the data directory.
	secret, err := s.turnSecret()
	if err != nil {
		return nil, err
	}
	if err := s.startRecordings(); err != nil {
		return nil, err
	}
	undo = append(undo, func() error { s.stopComposites(); return nil })
	s.rooms = room.NewManager(room.Config{
		Recorder:     recorder{s.recordings, s.recordingEvent},
		MayRecord:    s.mayRecord,
		ResumeKey:    derivedKey(secret, "parley resume tokens"),
		ICEServers:   s.iceServers,
		ICERefresh:   iceRefresh(cfg),
		PingInterval: cfg.PingInterval,
		PingTimeout:  cfg.PingTimeout,
		Media:        room.SFUMedia(s.sfu),
		P2PMax:       cfg.P2PMax,
		Events:       s.callEvent,
	}, log.With("part", "room"), s.postChat)
	s.rooms.Register(reg)

	// The studio tells the channel's open pages of each change through
	// the room's sockets.
	s.studio, err = studio.New(ctx, studio.Config{Dir: filepath.Join(cfg.DataDir, "studio"), Quota: cfg.StudioQuota, Idle: cfg.StudioIdle, TakeEvent: s.takeEvent},
		log.With("part", "studio"), db, func(channelID string, ev signaling.StudioEvent) {
			s.rooms.Notify(channelID, signaling.Message{Type: signaling.TypeStudio, Studio: &ev})
		})
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() error { s.studio.Close(); return nil })
	h, err := web.New(cfg, log.With("part", "web"), s.accounts, s.rooms, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), s.studio)
	if err != nil {
		return nil, err
	}
	h.SetRecordings(s.webRecordings())
	h.SetWebhooks(s.webhooks)
	s.joinTokens = jointoken.New(db, log.With("part", "jointoken"), nil)
	h.SetJoinTokens(s.joinTokens)
	v1, err := api.New(api.Deps{Log: log.With("part", "api"), Accounts: s.accounts, Rooms: s.rooms,
		Recordings: s.recordings, Studio: s.studio, Webhooks: s.webhooks, SessionCookie: web.SessionCookie, JoinTokens: s.joinTokens,
		Rate: rate.Limit(cfg.APIRate), Burst: cfg.APIBurst})
	if err != nil {
		return nil, err
	}
	h.SetAPI(v1)
	s.pairing = pairing.New(pairing.Config{TTL: cfg.PairingTTL}, log.With("part", "pairing"))
	s.pairing.Register(reg)
	undo = append(undo, func() error { s.pairing.Close(); return nil })
	h.SetPairing(s.pairing)
	if s.node != nil {
		h.SetCluster(s.node, s.node)
	}
	s.http = &http.Server{
		Handler: h,
		// ReadTimeout bounds the whole request, body included: a client
		// trickling a body to /login is cut off. Go clears the deadline
		// when a connection is hijacked, so WebSockets are not affected.
		ReadTimeout:       cfg.ReadTimeout,
		ReadHeaderTimeout: min(10*time.Second, cfg.ReadTimeout),
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		// The web edge frees a connection's place in the per-address
		// cap once it is an authenticated WebSocket (MaxConnectionsPerUser
		// bounds those); any other hijack frees it too.
		ConnContext: connlimit.ContextWithConn,
		ConnState: func(c net.Conn, st http.ConnState) {
			if st == http.StateHijacked {
				connlimit.Release(c)
			}
		},
	}
	switch cfg.TLS {
	case "files":
		c, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("load --tls-cert/--tls-key: %w", err)
		}
		s.tls = &tls.Config{Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS12}
	case "self-signed":
		c, err := selfSignedCert(cfg.DataDir, log)
		if err != nil {
			return nil, err
		}
		s.tls = &tls.Config{Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS12}
	}

	if err := s.startTURN(reg); err != nil {
		return nil, err
	}

	jctx, cancel := context.WithCancel(context.Background())
	s.stopJanitor = cancel
	s.janitorDone.Add(1)
	go s.janitor(jctx)
	s.runWebhooks()
	return s, nil
}

func (s *Server) postChat(ctx context.Context, u signaling.User, channelID, text string) (signaling.ChatMessage, error) {
	if u.Grants != nil {
		return s.postGrantedChat(ctx, u, channelID, text)
	}
	if u.Role == signaling.RoleGuest {
		return signaling.ChatMessage{}, &signaling.Error{Code: signaling.CodeForbidden, Ref: signaling.TypeChat, Message: "guests can read the chat but not post in it"}
	}
	m, err := s.accounts.PostMessage(ctx, store.User{ID: u.UserID, DisplayName: u.Name, Username: u.Username}, channelID, text)
	var ve *account.ValidationError
	switch {
	case errors.As(err, &ve):
		return signaling.ChatMessage{}, &signaling.Error{Code: signaling.CodeInvalid, Ref: signaling.TypeChat, Message: strings.Join(ve.Messages(), " ")}
	case errors.Is(err, account.ErrForbidden), errors.Is(err, account.ErrNotFound):
		return signaling.ChatMessage{}, &signaling.Error{Code: signaling.CodeInvalid, Ref: signaling.TypeChat, Message: "you are no longer a member of this channel, so you cannot post here"}
	case err != nil:
		return signaling.ChatMessage{}, err
	}
	return web.ChatMessage(m), nil
}

// wireAccount makes the account service's reports end and move
// connections, chaining to the caller's own callbacks, if any: whatever
// path removes a member, deletes a channel or changes its mode (a form,
// an API, an admin command), the call follows. s.rooms is set before any
// request or command can reach the service.
func (s *Server) wireAccount(acfg *account.Config) {
	revoked, removed, deleted, mode := acfg.Revoked, acfg.MemberRemoved, acfg.ChannelDeleted, acfg.ModeChanged
	acfg.Revoked = func(rv account.Revocation) {
		s.change(cluster.Event{Kind: evRevoked, User: rv.UserID, Key: rv.Key, Value: rv.Why})
		s.revokeJoinTokensOf(rv)
		if revoked != nil {
			revoked(rv)
		}
	}
	acfg.MemberRemoved = func(channelID, userID string) {
		s.change(cluster.Event{Kind: evKick, Channel: channelID, User: userID})
		if removed != nil {
			removed(channelID, userID)
		}
	}
	acfg.ChannelDeleted = func(channelID string) {
		s.change(cluster.Event{Kind: evDeleted, Channel: channelID})
		if s.studio != nil { // its takes' files
			s.studio.ChannelDeleted(channelID)
		}
		go s.deleteRecordings(channelID)
		if deleted != nil {
			deleted(channelID)
		}
	}
	guestsOff := acfg.GuestsOff
	acfg.GuestsOff = func(channelID string) {
		s.change(cluster.Event{Kind: evGuestsOff, Channel: channelID})
		if guestsOff != nil {
			guestsOff(channelID)
		}
	}
	roleChanged := acfg.RoleChanged
	acfg.RoleChanged = func(channelID, userID, role string) {
		s.change(cluster.Event{Kind: evRole, Channel: channelID, User: userID, Value: role})
		if roleChanged != nil {
			roleChanged(channelID, userID, role)
		}
	}
	acfg.ModeChanged = func(channelID, m string) {
		s.change(cluster.Event{Kind: evMode, Channel: channelID, Value: m})
		if mode != nil {
			mode(channelID, m)
		}
	}
}

// The kinds of change the calls must follow, on every node.
const (
	evRevoked   = "revoked"
	evKick      = "kick"
	evDeleted   = "deleted"
	evGuestsOff = "guests-off"
	evRole      = "role"
	evMode      = "mode"
)

// change applies ev to the calls on this node and, in a cluster, tells
// the other nodes (whose subscriptions apply it to theirs).
func (s *Server) change(ev cluster.Event) {
	s.apply(ev)
	if s.node != nil {
		go s.node.Publish(ev)
	}
}

// apply makes this node's calls follow ev.
func (s *Server) apply(ev cluster.Event) {
	switch ev.Kind {
	case evRevoked:
		s.rooms.EndAuth(ev.User, ev.Key, ev.Value)
		if s.pairing != nil {
			s.pairing.EndCredential(ev.User, ev.Key)
		}
	case evKick:
		s.rooms.Kick(ev.Channel, ev.User)
		if s.pairing != nil {
			s.pairing.Kick(ev.Channel, ev.User)
		}
	case evDeleted:
		s.rooms.CloseRoom(ev.Channel)
	case evGuestsOff:
		s.rooms.EndAuth("", "guests:"+ev.Channel, "the owner turned guest access off")
	case evRole:
		s.rooms.SetRole(ev.Channel, ev.User, ev.Value)
	case evMode:
		s.rooms.SetMode(ev.Channel, ev.Value)
	default:
		s.log.Warn("ignored a cluster event of an unknown kind", "kind", ev.Kind)
	}
}

// janitor removes expired sessions now and then, so the table stays small.
func (s *Server) janitor(ctx context.Context) {
	defer s.janitorDone.Done()
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := s.accounts.PruneSessions(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("delete expired sessions", "err", err)
		} else if n > 0 {
			s.log.Info("deleted expired sessions", "count", n)
		}
		if n, err := s.accounts.PruneLinks(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("delete expired reset and verification links", "err", err)
		} else if n > 0 {
			s.log.Info("deleted expired reset and verification links", "count", n)
		}
		if ids, err := s.accounts.PruneQuickCalls(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("delete idle 1:1 calls", "err", err)
		} else if len(ids) > 0 {
			s.log.Info("deleted 1:1 calls empty for a day", "count", len(ids))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Serve answers requests on ln until Shutdown; it returns nil after a
// clean shutdown.
func (s *Server) Serve(ln net.Listener) error {
	ln = connlimit.New(ln, s.cfg.MaxConnectionsPerIP, s.proxies.Trusted, s.connsRefused, s.log.With("part", "http"))
	s.startNode(ln)
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	err := s.http.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting requests, closes every signaling socket with
// "going away" (clients reconnect by themselves), waits for in-flight
// requests up to ctx, and closes the database.
func (s *Server) Shutdown(ctx context.Context) error {
	s.drainNode(ctx) // in a cluster: its calls start elsewhere as their clients reconnect
	errHTTP := s.http.Shutdown(ctx)
	errRooms := s.rooms.Shutdown(ctx)
	s.pairing.Close()
	s.recordings.StopAll("the server was stopped")
	s.stopJanitor()
	s.janitorDone.Wait()
	s.stopWebhooks()   // after the rooms: their last events are in the outbox
	s.accounts.Flush() // mails being sent still need the database
	s.stopComposites()
	errSFU := s.sfu.Close()
	errTURN := s.closeTURN()
	s.studio.Close()
	errDB := s.db.Close()
	return errors.Join(errHTTP, errRooms, errSFU, errTURN, errDB, s.closeNode())
}

// Close stops at once, like a killed process: every connection is cut.
func (s *Server) Close() error {
	errHTTP := s.http.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s.rooms.Shutdown(ctx)
	s.pairing.Close()
	s.stopJanitor()
	s.janitorDone.Wait()
	s.stopWebhooks()
	s.studio.Close()
	s.stopComposites()
	return errors.Join(errHTTP, s.sfu.Close(), s.closeTURN(), s.db.Close(), s.closeNode())
}

func (s *Server) closeTURN() error {
	if s.turn == nil {
		return nil
	}
	return s.turn.Close()
}

// DB is the server's database, for tests and admin commands.
func (s *Server) DB() *store.DB { return s.db }

// Accounts is the server's account service, for tests and admin commands.
func (s *Server) Accounts() *account.Service { return s.accounts }

// TLS reports whether the server speaks HTTPS.
func (s *Server) TLS() bool { return s.tls != nil }
