package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/jointoken"
	"github.com/parley/parley/internal/store"
)

const joinKeysUsage = `Usage:
  parley join-keys list              the keys that sign and verify join tokens
  parley join-keys rotate            make a new signing key; the old one keeps
                                     verifying the tokens it signed until they expire
  parley join-keys revoke KID        refuse every token KID signed, from now on
                                     (their holders' next renewal or reconnect fails)

Flags (before the subcommand): --data-dir, --database, as for parley serve.
A running server picks the change up within 10 seconds.
`

// joinKeys manages the join tokens' signing keys (docs/operations.md).
func joinKeys(args []string, stdout, stderr io.Writer) int {
	cfg := config.Default()
	fs := flag.NewFlagSet("parley join-keys", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, joinKeysUsage); fs.PrintDefaults() }
	f := &envFlags{fs: fs, envs: map[string]string{}, warn: stderr}
	f.string(&cfg.DataDir, "data-dir", "PARLEY_DATA_DIR", "directory of the SQLite database")
	f.string(&cfg.DatabaseURL, "database", "PARLEY_DATABASE_URL", "PostgreSQL URL; empty uses SQLite in --data-dir")
	if err := f.parse(args); err != nil {
		return 2
	}
	rest := fs.Args()
	if len(rest) == 0 || (rest[0] == "revoke") != (len(rest) == 2) || len(rest) > 2 {
		fmt.Fprint(stderr, joinKeysUsage)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	db, err := store.Open(ctx, cfg.DatabaseURL, cfg.DataDir, log)
	if err != nil {
		fmt.Fprintf(stderr, "parley join-keys: open the database: %v\n", err)
		return 1
	}
	defer db.Close()
	svc := jointoken.New(db, log, nil)
	switch rest[0] {
	case "list":
		keys, err := svc.Keys(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "parley join-keys: %v\n", err)
			return 1
		}
		if len(keys) == 0 {
			fmt.Fprintln(stdout, "no keys yet: the first token minted makes one")
		}
		for _, k := range keys {
			state := "current (signs new tokens)"
			if !k.RetiredAt.IsZero() {
				state = "retired, verifies until " + k.LastExpiry.Format(time.RFC3339)
			}
			fmt.Fprintf(stdout, "%s\tcreated %s\t%s\n", k.KID, k.CreatedAt.Format(time.RFC3339), state)
		}
	case "rotate":
		kid, err := svc.Rotate(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "parley join-keys: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "new signing key %s; tokens signed before stay valid until they expire\n", kid)
	case "revoke":
		if err := svc.RevokeKey(ctx, rest[1]); err != nil {
			fmt.Fprintf(stderr, "parley join-keys: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "revoked %s: every token it signed is refused from now on\n", rest[1])
	default:
		fmt.Fprint(stderr, joinKeysUsage)
		return 2
	}
	return 0
}
