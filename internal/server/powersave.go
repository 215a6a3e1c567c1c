package server

import (
	"context"
	"fmt"

	"github.com/walt-testbed/walt/internal/powersave"
	"github.com/walt-testbed/walt/internal/store"
)

// DefaultPowersave is how long a free node stays idle before powersave
// switches its PoE port off (WalT's POWERSAVE_TIMEOUT).
const DefaultPowersave = powersave.DefaultIdle

// WakeNodes powers on the nodes, among macs, whose PoE port powersave
// turned off, and restarts the idle time of all of them
// (powersave.Powersave.Wake). walt node wait calls it before waiting for
// nodes to boot.
func (s *Server) WakeNodes(ctx context.Context, macs []string) ([]string, error) {
	return s.ps.Wake(ctx, macs)
}

// ownershipPower applies an ownership change to powersave: nodes acquired
// are powered on if powersave turned them off, nodes released start their
// idle time. It returns lines for the user.
func (s *Server) ownershipPower(ctx context.Context, action string, changes []store.DeviceChange) []string {
	macs := make([]string, len(changes))
	for i, c := range changes {
		macs[i] = c.MAC
	}
	if action != "acquire" {
		s.ps.Touch(macs...)
		return nil
	}
	woken, err := s.WakeNodes(ctx, macs)
	var msgs []string
	if len(woken) > 0 {
		msgs = append(msgs, "Reactivating related switch port(s) in powersave mode.")
	}
	if err != nil {
		s.log.Warn("powersave: acquired nodes not powered on", "err", err)
		msgs = append(msgs, fmt.Sprintf("Warning: %v", err))
	}
	return msgs
}
