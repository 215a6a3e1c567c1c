package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"syscall"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/lab"
)

// UnprivilegedSNMPPort is where the lab's switches listen when port 161 is
// not allowed (no root, no CAP_NET_BIND_SERVICE).
const UnprivilegedSNMPPort = 1161

// startLab starts the lab. With cfg.SNMPPort 0, the switches listen on 161
// if this process may, else on UnprivilegedSNMPPort; the server learns the
// port from the snmp.port setting.
func startLab(cfg lab.Config, log *slog.Logger) (*lab.Lab, error) {
	if cfg.SNMPPort != 0 {
		return lab.Start(cfg)
	}
	cfg.SNMPPort = 161
	l, err := lab.Start(cfg)
	if errors.Is(err, syscall.EACCES) {
		log.Warn("no permission for SNMP port 161: switches use another port", "port", UnprivilegedSNMPPort)
		cfg.SNMPPort = UnprivilegedSNMPPort
		return lab.Start(cfg)
	}
	return l, err
}

// snmpPort is the UDP port the lab's switches listen on.
func snmpPort(l *lab.Lab) string {
	if len(l.Switches) == 0 {
		return "161"
	}
	_, port, _ := net.SplitHostPort(l.Switches[0].Addr())
	return port
}

// rescan asks the server to read the LLDP tables of the lab's switches
// (walt device rescan): each node's port comes from there, as on a real
// testbed. It runs before any node reports, so that the server knows every
// port before a node counts as booted; until its first report a node is an
// unknown device named after its MAC.
func (r *registrar) rescan() error {
	names := make([]string, len(r.lab.Switches))
	for i, sw := range r.lab.Switches {
		names[i] = sw.Name()
	}
	res, err := r.c.Rescan(r.ctx, api.RescanRequest{Set: strings.Join(names, ",")})
	if err != nil {
		return fmt.Errorf("rescan the switches: %w", err)
	}
	for _, s := range res.Switches {
		if !s.OK {
			r.log.Warn("rescan: switch not read, the server does not know the ports of its nodes", "switch", s.Name, "err", s.Error)
		}
	}
	r.log.Info("rescan done", "switches", len(res.Switches), "changes", len(res.Changes))
	return nil
}
