package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"

	"github.com/walt-testbed/walt/api"
)

func init() {
	register(&command{
		noun: "log", verb: "show", summary: "print the platform log (node boots and reboots), or follow it",
		maxArgs: 0,
		flags: func(fs *flag.FlagSet, o *opts) {
			fs.BoolVar(&o.follow, "follow", false, "keep printing new lines until interrupted")
			fs.IntVar(&o.limit, "limit", 100, "print the last `N` lines first (0: all)")
			fs.BoolVar(&o.json, "json", false, "print one JSON object per line (NDJSON)")
		},
		run: logShow,
	})
}

func logShow(ctx context.Context, e *env, _ []string) int {
	if e.o.limit < 0 || e.o.limit > api.MaxLimit {
		fmt.Fprintf(e.Stderr, "Error: --limit %d: want 0 (all lines) to %d\nTry: walt log show --help\n", e.o.limit, api.MaxLimit)
		return ExitUsage
	}
	enc := json.NewEncoder(e.Stdout)
	err := e.c.Logs(ctx, e.o.limit, e.o.follow, func(l api.LogLine) error {
		if e.o.json {
			return enc.Encode(l)
		}
		_, err := printf(e.Stdout, "%s %s.%s -> %s\n", l.At.Local().Format("15:04:05.000000"), l.Issuer, l.Stream, l.Line)
		return err
	})
	if err != nil && ctx.Err() == nil {
		return e.fail(err)
	}
	return ExitOK
}
