// Package pionlog adapts pion's leveled loggers to log/slog, once, for
// every part of Parley that runs pion (the SFU, the native client, p2p).
package pionlog

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// Step is one slog level (Debug → Info → Warn → Error are 4 apart).
const Step slog.Level = 4

// Factory is a pion logging.LoggerFactory writing to Log. pion logs
// routine events (state changes, candidates) at Info and the ordinary
// teardown of a connection (reads on closed sockets) at Warn and Error,
// so its levels are moved Down before they reach slog: one Step for a
// server with peers coming and going, two for a command-line tool whose
// status lines tell the story.
type Factory struct {
	Log  *slog.Logger
	Down slog.Level
}

// NewLogger implements logging.LoggerFactory.
func (f Factory) NewLogger(scope string) logging.LeveledLogger {
	return logger{log: f.Log.With("pion", scope), down: f.Down}
}

type logger struct {
	log  *slog.Logger
	down slog.Level
}

func (l logger) logf(level slog.Level, format string, args ...any) {
	level -= l.down
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	l.log.Log(ctx, level, fmt.Sprintf(format, args...))
}

const levelTrace = slog.LevelDebug - Step

func (l logger) Trace(msg string)                  { l.logf(levelTrace, "%s", msg) }
func (l logger) Tracef(format string, args ...any) { l.logf(levelTrace, format, args...) }
func (l logger) Debug(msg string)                  { l.logf(slog.LevelDebug, "%s", msg) }
func (l logger) Debugf(format string, args ...any) { l.logf(slog.LevelDebug, format, args...) }
func (l logger) Info(msg string)                   { l.logf(slog.LevelInfo, "%s", msg) }
func (l logger) Infof(format string, args ...any)  { l.logf(slog.LevelInfo, format, args...) }
func (l logger) Warn(msg string)                   { l.logf(slog.LevelWarn, "%s", msg) }
func (l logger) Warnf(format string, args ...any)  { l.logf(slog.LevelWarn, format, args...) }
func (l logger) Error(msg string)                  { l.logf(slog.LevelError, "%s", msg) }
func (l logger) Errorf(format string, args ...any) { l.logf(slog.LevelError, format, args...) }
