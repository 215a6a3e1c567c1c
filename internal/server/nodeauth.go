package server

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/store"
)

// Node traffic (docs/api.md, "Node reports"): a boot report or a
// heartbeat from another host is accepted for a node only from that
// node's address: a report must come from the IP it declares and, for a
// known node, from its inventory IP (a first report registers it); a
// heartbeat or a done report only for nodes whose inventory IP it comes
// from. Reports from 127.0.0.1 or ::1, the source of a connection this
// host opens to a loopback address, come from the server's own host
// (walt-lab, the vnode supervisor's agents, QEMU guests behind user-mode
// NAT, whose reports arrive from 127.0.0.1) and are taken as before;
// another loopback address (127.0.0.5, a process that chose it) is
// checked like any other host. A refusal is logged, at most once a
// second.

// trustedSource reports whether traffic from src is the server host's own.
func trustedSource(src netip.Addr) bool {
	src = src.Unmap()
	return src == netip.AddrFrom4([4]byte{127, 0, 0, 1}) || src == netip.IPv6Loopback()
}

// checkReportSource refuses a report from another host that is not the
// node's. old is the stored device, nil for a new one.
func (s *Server) checkReportSource(ctx context.Context, rep api.NodeReport, old *store.Device) error {
	src, ok := sourceOf(ctx)
	if !ok || trustedSource(src) {
		return nil
	}
	declared, err := netip.ParseAddr(rep.IP)
	switch {
	case err != nil || declared.Unmap() != src:
		s.refusedNode.warn(s.log, "node report refused: it does not come from the address it declares", "mac", rep.MAC, "declared_ip", rep.IP, "source", src)
		return culprits(kindf(errForbidden, "a node reports from its own address: this report for %s declares %s but comes from %s", rep.MAC, rep.IP, src), []string{"ip"})
	case old != nil && old.IP != "" && old.IP != src.String():
		s.refusedNode.warn(s.log, "node report refused: it does not come from the node's inventory address", "node", old.Name, "mac", old.MAC, "inventory_ip", old.IP, "source", src)
		return culprits(kindf(errForbidden, "node %s is at %s in the inventory, and this report comes from %s: an admin forgets it (walt device forget %s) if it moved", old.Name, old.IP, src, old.Name), []string{old.Name})
	}
	return nil
}

// heartbeatFrom reports whether a heartbeat for mac may come from the
// request's source.
func (s *Server) heartbeatFrom(ctx context.Context, mac string) bool {
	src, ok := sourceOf(ctx)
	if !ok || trustedSource(src) {
		return true
	}
	d, err := s.devices.node(ctx, mac)
	if err == nil && d.IP == src.String() {
		return true
	}
	s.refusedNode.warn(s.log, "heartbeat refused: it does not come from the node's inventory address", "mac", mac, "inventory_ip", d.IP, "source", src)
	return false
}

// checkDoneSource refuses a done report for node d from another host
// than d's inventory address.
func (s *Server) checkDoneSource(ctx context.Context, d store.Device) error {
	src, ok := sourceOf(ctx)
	if !ok || trustedSource(src) || d.IP == src.Unmap().String() {
		return nil
	}
	s.refusedNode.warn(s.log, "done report refused: it does not come from the node's inventory address", "node", d.Name, "inventory_ip", d.IP, "source", src)
	return culprits(kindf(errForbidden, "node %s is at %s in the inventory, and this done report comes from %s", d.Name, d.IP, src), []string{d.Name})
}

// rateLog logs a warning at most once a second, counting the others.
type rateLog struct {
	mu         sync.Mutex
	last       time.Time // +checklocks:mu
	suppressed int       // +checklocks:mu
}

func (l *rateLog) warn(log *slog.Logger, msg string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now := time.Now(); now.Sub(l.last) >= time.Second {
		log.Warn(msg, append(args, "refused_since_last_line", l.suppressed)...)
		l.last, l.suppressed = now, 0
		return
	}
	l.suppressed++
}
