package server

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/walt-testbed/walt/internal/boot"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/vocab"
)

// Boot tracking lives in internal/boot; this is the server's side of it:
// the watchdog's settings and reboots, and the wake hook of `walt node
// wait`.

// WakeFunc powers on nodes that are off on purpose (powersave) before
// `walt node wait` waits for them, and returns the names of those it
// powered on. Powersave installs one with Server.SetWakeFunc.
type WakeFunc func(ctx context.Context, nodes []store.Device) (woken []string, err error)

// wakeHook holds the WakeFunc; nil means powersave's WakeNodes.
type wakeHook struct {
	mu sync.Mutex
	f  WakeFunc // +checklocks:mu
}

// watchdog is the boot watchdog's view of the server.
type watchdog struct{ s *Server }

// Limits reads the nodes' boot.timeout and boot.retries.
func (w watchdog) Limits(ctx context.Context, macs []string) (map[string]boot.Limit, error) {
	settings, err := w.s.store.Settings(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]boot.Limit, len(macs))
	for _, mac := range macs {
		var l boot.Limit
		l.Timeout, _ = watchdogTimeout(settings[mac])
		l.Retries, _ = strconv.Atoi(effective(settings[mac], vocab.BootRetries))
		out[mac] = l
	}
	return out, nil
}

// watchdogTimeout returns a node's boot.timeout, false when disabled.
func watchdogTimeout(settings map[string]string) (time.Duration, bool) {
	secs, err := strconv.Atoi(effective(settings, vocab.BootTimeout))
	if err != nil || secs <= 0 {
		return 0, false // "none"
	}
	return time.Duration(secs) * time.Second, true
}

// Reboot is the watchdog's hard reboot (watchdogReboot).
func (w watchdog) Reboot(ctx context.Context, mac string) { w.s.watchdogReboot(ctx, mac) }

// SetWakeFunc installs the function `walt node wait` calls to power on
// nodes in powersave before waiting for them (issue 5, powersave).
func (s *Server) SetWakeFunc(f WakeFunc) {
	s.wake.mu.Lock()
	defer s.wake.mu.Unlock()
	s.wake.f = f
}

// MarkDown marks a node not booted on purpose; powersave calls it with
// cause api.CausePowersave, which the boot watchdog leaves alone.
func (s *Server) MarkDown(mac, cause, method string) { s.boots.MarkDown(mac, cause, method) }

// StartBootTracking starts the periodic checks of boot tracking: silent
// nodes go down, the boot watchdog reboots stuck nodes. Serve calls it;
// tests serving Handler() call it themselves. stop ends the checks.
func (s *Server) StartBootTracking() (stop func()) { return s.boots.Start() }

// Close stops the campaigns and boot tracking and writes their pending
// changes. Call it before closing the store.
func (s *Server) Close() error {
	s.campaigns.Close()
	s.boots.Close()
	return nil
}
