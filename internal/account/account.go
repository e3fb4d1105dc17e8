// Package account holds Parley's rules about people: signing up, logging in
// and out, sessions, password hashing, login rate limiting, and who may see
// or change a channel. It sits between the web edge and the store.
package account

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley/parley/internal/store"
)

// ErrBadCredentials is returned by LogIn when the username or password is
// wrong. It deliberately does not say which.
var ErrBadCredentials = errors.New("wrong username or password")

// ErrForbidden is returned (wrapped) when the user is logged in but may not
// do what they asked: they are not a member, or not the owner.
var ErrForbidden = errors.New("forbidden")

// ErrNotFound is returned (wrapped) when the channel, invite or member asked
// about does not exist.
var ErrNotFound = errors.New("not found")

// ErrUnauthenticated is returned (wrapped) when a session token is missing,
// unknown or expired.
var ErrUnauthenticated = errors.New("not logged in")

// ValidationError reports input the user can fix. Fields maps a form field
// name (e.g. "username") to a message that says what is wrong and how to fix
// it, fit to show next to that field.
type ValidationError struct {
	Fields map[string]string
	// Order lists the fields in the order of the form they came from;
	// fields it leaves out follow in name order.
	Order []string
}

// Messages returns every field's message, in form order.
func (e *ValidationError) Messages() []string {
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		if !slices.Contains(e.Order, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	out := make([]string, 0, len(e.Fields))
	for _, k := range append(slices.Clone(e.Order), keys...) {
		if msg, ok := e.Fields[k]; ok {
			out = append(out, msg)
		}
	}
	return out
}

// Error lists the fields and messages in a stable order.
func (e *ValidationError) Error() string {
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + e.Fields[k]
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

// invalid returns a ValidationError for a single field.
func invalid(field, msg string) *ValidationError {
	return &ValidationError{Fields: map[string]string{field: msg}}
}

// RateLimitedError is returned by LogIn when there have been too many
// failed logins for the account or from the address (the password was not
// checked), and by SignUp when there have been too many sign-ups from the
// address.
type RateLimitedError struct {
	// RetryAfter is how long until an attempt will be considered again.
	RetryAfter time.Duration
	// SignUp is set when the sign-up limit refused the attempt.
	SignUp bool
	// Mail is set when the limit on password reset or verification mails
	// refused the request.
	Mail bool
}

// Error says what was limited and how long to wait, rounded up to whole
// seconds.
func (e *RateLimitedError) Error() string {
	what := "too many failed logins"
	switch {
	case e.SignUp:
		what = "too many sign-ups from this address"
	case e.Mail:
		what = "too many emails asked for"
	}
	return fmt.Sprintf("%s; try again in %s", what, time.Duration(RetryAfterSeconds(e.RetryAfter))*time.Second)
}

// RetryAfterSeconds rounds d up to whole seconds, at least 1, as an HTTP
// Retry-After header wants: rounding down would invite a retry that is
// refused again.
func RetryAfterSeconds(d time.Duration) int {
	return int(max(1, (d+time.Second-1)/time.Second))
}

// Limits on user input, exported so forms can show them (e.g. maxlength).
// Lengths count characters (runes), not bytes.
const (
	MinUsernameLen    = 3
	MaxUsernameLen    = 32
	MaxDisplayNameLen = 64
	MaxEmailLen       = 254
	MinPasswordLen    = 10
	MaxPasswordLen    = 256
	MaxChannelNameLen = 64
	MaxMessageLen     = 2000
	// HistorySize is how many messages a channel keeps and History returns.
	HistorySize = 100
)

// Argon2Params are the argon2id cost parameters for new password hashes.
// Existing hashes carry their own parameters and verify regardless.
type Argon2Params struct {
	// Time is the number of passes over memory.
	Time uint32
	// MemoryKiB is the memory used per hash, in KiB.
	MemoryKiB uint32
	// Threads is the degree of parallelism.
	Threads uint8
}

// DefaultArgon2 follows the OWASP password storage recommendation for
// argon2id (m=19 MiB, t=2, p=1): strong, yet affordable per login on a small
// server.
func DefaultArgon2() Argon2Params {
	return Argon2Params{Time: 2, MemoryKiB: 19 * 1024, Threads: 1}
}

// TestArgon2 returns parameters far too weak for real use, cheap enough for
// tests that sign up and log in many times.
func TestArgon2() Argon2Params {
	return Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}
}

// Config tunes the Service. Zero fields take the defaults below.
type Config struct {
	// SessionTTL is how long a login lasts. Default 30 days.
	SessionTTL time.Duration
	// MaxFailuresPerAccount is how many failed logins for one username
	// are free within FailureWindow. Past it, attempts on the account from
	// anywhere are slowed down (SlowDownDelay, doubling up to
	// MaxSlowDownDelay), not refused, so that a stranger's guesses cannot
	// lock the owner out; and the address that failed that often is
	// refused for that account until its failures leave the window.
	// Default 5; negative disables the limit.
	MaxFailuresPerAccount int
	// MaxFailuresPerIP is how many failed logins one client address may
	// have within FailureWindow, on any accounts, before it is refused.
	// Default 20; negative disables the limit.
	MaxFailuresPerIP int
	// FailureWindow is the sliding window failures are counted in.
	// Default 15 minutes.
	FailureWindow time.Duration
	// SlowDownDelay is the pause before the first login attempt on an
	// account past MaxFailuresPerAccount; each further failure doubles
	// it, up to MaxSlowDownDelay. Defaults 1 second and 1 minute.
	SlowDownDelay    time.Duration
	MaxSlowDownDelay time.Duration
	// MaxSignUpsPerIP is how many sign-ups one client address may make
	// within SignUpWindow. Default 20 per hour; negative disables it.
	MaxSignUpsPerIP int
	SignUpWindow    time.Duration
	// MaxConcurrentHashes bounds the argon2id hashes running at once (each
	// takes Argon2.MemoryKiB). Default twice GOMAXPROCS.
	MaxConcurrentHashes int
	// HashQueueWait is how long a login or sign-up waits for a hashing
	// slot before it is refused with ErrBusy. Default 2 seconds.
	HashQueueWait time.Duration
	// Argon2 sets the cost of new password hashes. Default DefaultArgon2().
	Argon2 Argon2Params
	// Mailer sends password reset and verification links; nil means no
	// mail server is configured: reset links are written to the log (with
	// a warning) for the operator to pass on, and addresses are not
	// verified.
	Mailer Mailer
	// ResetTTL is how long a password reset link works. Default 1 hour.
	ResetTTL time.Duration
	// VerifyTTL is how long an email verification link works. Default
	// 24 hours.
	VerifyTTL time.Duration
	// MaxMailsPerIP is how many password reset requests one client
	// address may make within MailWindow; MaxMailsPerAccount how many
	// reset or verification mails one account (or one username or address
	// typed into the form) may be sent. Defaults 10 and 3 per hour;
	// negative disables a limit.
	MaxMailsPerIP      int
	MaxMailsPerAccount int
	MailWindow         time.Duration
	// Limiters, if set, makes the shared rate limiter for each of the
	// service's limits (several nodes counting attempts together); nil
	// counts in memory, per node.
	Limiters func(LimiterParams) Limiter
	// Clock, if set, is the time source when New is given none: tests of
	// a whole server use it to expire links without waiting.
	Clock func() time.Time
	// Revoked, if set, is told of every credential that stops working
	// (logout, a revoked token), once the store no longer accepts it, so
	// the caller can end the connections it authenticated. It must not
	// block.
	Revoked func(Revocation)
	// MemberRemoved, if set, is told when the owner removed userID from
	// channelID (RemoveMember), once the store no longer counts them a
	// member, so the caller can end that user's connections to the
	// channel's call whichever path removed them (a form, an API, an admin
	// command). It must not block.
	MemberRemoved func(channelID, userID string)
	// ChannelDeleted, if set, is told when channelID was deleted
	// (DeleteChannel), once it is gone from the store, so the caller can
	// end its call. It must not block.
	ChannelDeleted func(channelID string)
	// ModeChanged, if set, is told when channelID's media mode was set
	// (SetChannelMode), once stored, so a running call can move. It must
	// not block.
	ModeChanged func(channelID, mode string)
	// RoleChanged, if set, is told when userID's role in channelID
	// changed (SetModerator), once stored, so a running call applies it
	// at once. role is signal.RoleModerator or "". It must not block.
	RoleChanged func(channelID, userID, role string)
	// GuestsOff, if set, is told when the owner turned channelID's guest
	// link off (or replaced it), once stored, so the caller can close the
	// guests' sockets. It must not block.
	GuestsOff func(channelID string)
	// MemberEvent, if set, builds the webhook outbox event of a change of
	// channelID's members: how is "added" (by the owner), "invite"
	// (joined by a link), "removed" (by the owner) or "left". The store
	// writes it in the change's own transaction, so the event commits
	// with the change or not at all. An error refuses the change.
	MemberEvent func(channelID string, member store.User, how string) (store.OutboxEvent, error)
}

// DefaultConfig returns the configuration New uses for zero fields.
func DefaultConfig() Config {
	return Config{
		SessionTTL:            30 * 24 * time.Hour,
		MaxFailuresPerAccount: 5,
		MaxFailuresPerIP:      20,
		FailureWindow:         15 * time.Minute,
		SlowDownDelay:         time.Second,
		MaxSlowDownDelay:      time.Minute,
		MaxSignUpsPerIP:       20,
		SignUpWindow:          time.Hour,
		MaxConcurrentHashes:   2 * runtime.GOMAXPROCS(0),
		HashQueueWait:         2 * time.Second,
		Argon2:                DefaultArgon2(),
		ResetTTL:              time.Hour,
		VerifyTTL:             24 * time.Hour,
		MaxMailsPerIP:         10,
		MaxMailsPerAccount:    3,
		MailWindow:            time.Hour,
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.SessionTTL <= 0 {
		c.SessionTTL = d.SessionTTL
	}
	if c.MaxFailuresPerAccount == 0 {
		c.MaxFailuresPerAccount = d.MaxFailuresPerAccount
	}
	if c.MaxFailuresPerIP == 0 {
		c.MaxFailuresPerIP = d.MaxFailuresPerIP
	}
	if c.FailureWindow <= 0 {
		c.FailureWindow = d.FailureWindow
	}
	if c.SlowDownDelay <= 0 {
		c.SlowDownDelay = d.SlowDownDelay
	}
	if c.MaxSlowDownDelay <= 0 {
		c.MaxSlowDownDelay = d.MaxSlowDownDelay
	}
	c.MaxSlowDownDelay = max(c.MaxSlowDownDelay, c.SlowDownDelay)
	if c.MaxSignUpsPerIP == 0 {
		c.MaxSignUpsPerIP = d.MaxSignUpsPerIP
	}
	if c.SignUpWindow <= 0 {
		c.SignUpWindow = d.SignUpWindow
	}
	if c.MaxConcurrentHashes <= 0 {
		c.MaxConcurrentHashes = d.MaxConcurrentHashes
	}
	if c.HashQueueWait <= 0 {
		c.HashQueueWait = d.HashQueueWait
	}
	if c.Argon2.Time == 0 {
		c.Argon2.Time = d.Argon2.Time
	}
	if c.Argon2.MemoryKiB == 0 {
		c.Argon2.MemoryKiB = d.Argon2.MemoryKiB
	}
	if c.Argon2.Threads == 0 {
		c.Argon2.Threads = d.Argon2.Threads
	}
	if c.ResetTTL <= 0 {
		c.ResetTTL = d.ResetTTL
	}
	if c.VerifyTTL <= 0 {
		c.VerifyTTL = d.VerifyTTL
	}
	if c.MaxMailsPerIP == 0 {
		c.MaxMailsPerIP = d.MaxMailsPerIP
	}
	if c.MaxMailsPerAccount == 0 {
		c.MaxMailsPerAccount = d.MaxMailsPerAccount
	}
	if c.MailWindow <= 0 {
		c.MailWindow = d.MailWindow
	}
	// argon2 needs at least 8 KiB per thread.
	c.Argon2.MemoryKiB = max(c.Argon2.MemoryKiB, 8*uint32(c.Argon2.Threads))
	return c
}

// Service implements the account and channel rules on top of a store.DB.
// It is safe for concurrent use.
type Service struct {
	cfg     Config
	db      *store.DB
	log     *slog.Logger
	now     func() time.Time
	limiter limits // failed logins
	signups limits // sign-ups per address
	mails   limits // reset and verification mails
	hasher  *hasher
	// background runs mail jobs (recovery.go) off the request, so a
	// reset request for a known account takes as long as for an unknown
	// one; slots bounds how many run at once.
	background sync.WaitGroup
	slots      chan struct{}
	// lost counts memberships lost (MembershipVersion).
	lost atomic.Uint64
}

// New returns a Service. now supplies the current time (nil means
// time.Now); tests pass a fake clock to expire sessions and rate limits
// without sleeping. A nil log discards log output.
func New(cfg Config, db *store.DB, log *slog.Logger, now func() time.Time) *Service {
	cfg = cfg.withDefaults()
	if now == nil {
		now = cfg.Clock
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{
		cfg:     cfg,
		db:      db,
		log:     log.With("component", "account"),
		now:     now,
		limiter: cfg.limits("logins", cfg.FailureWindow, cfg.SlowDownDelay, cfg.MaxSlowDownDelay, log),
		signups: cfg.limits("signups", cfg.SignUpWindow, 0, 0, log),
		mails:   cfg.limits("mails", cfg.MailWindow, 0, 0, log),
		slots:   make(chan struct{}, maxMailJobs),
		hasher:  newHasher(cfg.MaxConcurrentHashes, cfg.HashQueueWait),
	}
}

// limits makes one limiter: in memory, shared when c.Limiters says so.
func (c Config) limits(name string, window, delay, maxDelay time.Duration, log *slog.Logger) limits {
	l := limits{limiter: newLimiter(window, delay, maxDelay), log: log}
	if c.Limiters != nil {
		l.shared = c.Limiters(LimiterParams{Name: name, Window: window, Delay: delay, MaxDelay: maxDelay})
	}
	return l
}

// SessionTTL is how long a new session lasts, e.g. for a cookie's Max-Age.
func (s *Service) SessionTTL() time.Duration {
	return s.cfg.SessionTTL
}

// storedTime rounds t the way the store keeps it (UTC, whole
// milliseconds), so a value returned right after a write equals the one
// read back later.
func storedTime(t time.Time) time.Time {
	return time.UnixMilli(t.UnixMilli()).UTC()
}
