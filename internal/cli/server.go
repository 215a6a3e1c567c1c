package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/walt-testbed/walt/api"
)

func init() {
	register(&command{
		noun: "server", verb: "status", summary: "print the server's version, store, virtual node backend and accelerator, or wait until it answers",
		maxArgs: 0,
		flags: func(fs *flag.FlagSet, o *opts) {
			fs.IntVar(&o.timeout, "timeout", 0, "wait up to `N` seconds for the server to answer (0: ask once)")
			fs.BoolVar(&o.json, "json", false, "print the readiness answer as JSON (GET /api/v1/health)")
		},
		run: serverStatus,
	})
}

// maxStatusWait bounds walt server status --timeout.
const maxStatusWait = 3600

func serverStatus(ctx context.Context, e *env, _ []string) int {
	if e.o.timeout < 0 || e.o.timeout > maxStatusWait {
		fmt.Fprintf(e.Stderr, "Error: --timeout %d: want 0 to %d seconds\nTry: walt server status --help\n", e.o.timeout, maxStatusWait)
		return ExitUsage
	}
	var h api.Health
	var err error
	if e.o.timeout == 0 {
		h, err = e.c.Health(ctx)
	} else {
		wctx, cancel := context.WithTimeout(ctx, time.Duration(e.o.timeout)*time.Second)
		h, err = e.c.WaitHealthy(wctx, 50*time.Millisecond)
		cancel()
		if err != nil {
			err = fmt.Errorf("no answer within %ds: %w", e.o.timeout, err)
		}
	}
	if err != nil {
		return e.fail(err)
	}
	if e.o.json {
		json.NewEncoder(e.Stdout).Encode(h)
		return ExitOK
	}
	// The server's words (QEMU's complaint among them) are escaped like
	// any text from outside.
	printf(e.Stdout, "version:  %s (API %s)\n", h.Version, h.API)
	printf(e.Stdout, "store:    %s\n", h.Store)
	switch v := h.VNodes; {
	case v.Backend == "":
		printf(e.Stdout, "vnodes:   none\n")
	case v.Accel == "":
		printf(e.Stdout, "vnodes:   %s\n", v.Backend)
	default:
		printf(e.Stdout, "vnodes:   %s, %s (%s)\n", v.Backend, v.Accel, v.AccelReason)
	}
	printf(e.Stdout, "uptime:   %s\n", (time.Duration(h.Uptime) * time.Second).String())
	if len(h.Starting) > 0 {
		printf(e.Stdout, "starting: %s\n", strings.Join(h.Starting, ", "))
	}
	return ExitOK
}
