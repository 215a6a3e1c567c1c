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
			fs.BoolVar(&o.audit, "audit", false, "print the audit trail instead: who changed what, from where, when (admins only)")
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
	if e.o.audit {
		return auditShow(ctx, e, enc)
	}
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

// auditShow prints the audit trail: time, user, source, call, target,
// status.
func auditShow(ctx context.Context, e *env, enc *json.Encoder) int {
	err := e.c.Audit(ctx, e.o.limit, e.o.follow, func(a api.AuditEntry) error {
		if e.o.json {
			return enc.Encode(a)
		}
		_, err := printf(e.Stdout, "%s %s from %s: %s %s -> %d\n", a.At.Local().Format("2006-01-02 15:04:05.000"), a.User, a.Source, a.Route, a.Target, a.Status)
		return err
	})
	if err != nil && ctx.Err() == nil {
		return e.fail(err)
	}
	return ExitOK
}
