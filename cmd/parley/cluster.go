package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/parley/parley/internal/cluster"
)

// clusterCmd is `parley cluster status`: the nodes registered in Redis,
// the calls each holds and their participants.
func clusterCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "status" {
		fmt.Fprintln(stderr, "Usage: parley cluster status [--redis URL] [--redis-prefix P] [--json]")
		return 2
	}
	fs := flag.NewFlagSet("parley cluster status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := &envFlags{fs: fs, envs: map[string]string{}, warn: stderr}
	redisURL, prefix := "redis://127.0.0.1:6379/0", "parley:"
	var asJSON bool
	f.string(&redisURL, "redis", "PARLEY_REDIS_URL", "the cluster's Redis URL")
	f.string(&prefix, "redis-prefix", "PARLEY_REDIS_PREFIX", "the deployment's Redis key prefix")
	fs.BoolVar(&asJSON, "json", false, "print JSON")
	if err := f.parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := cluster.ParseRedisURL(redisURL); err != nil {
		fmt.Fprintf(stderr, "parley cluster status: --redis %q: %v\n", redisURL, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nodes, err := cluster.Status(ctx, redisURL, prefix)
	if err != nil {
		fmt.Fprintf(stderr, "parley cluster status: %v\n", err)
		return 1
	}
	if asJSON {
		json.NewEncoder(stdout).Encode(map[string]any{"nodes": nodes})
		return 0
	}
	if len(nodes) == 0 {
		fmt.Fprintln(stdout, "no live nodes")
		return 0
	}
	for _, n := range nodes {
		people := 0
		for _, c := range n.Calls {
			people += c.Participants
		}
		fmt.Fprintf(stdout, "node %s  %s  %d calls, %d participants (seen %s)\n", n.ID, n.URL, len(n.Calls), people, n.Seen)
		for _, c := range n.Calls {
			fmt.Fprintf(stdout, "  call %s  %d participants\n", c.ID, c.Participants)
		}
	}
	return 0
}
