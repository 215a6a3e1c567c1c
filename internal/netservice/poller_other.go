//go:build !linux

package netservice

import (
	"context"
	"net/netip"
	"time"
)

// Elsewhere than on Linux, Do dials every address.
type poller struct{}

type exchangeResult struct {
	line      string
	connected bool
	err       error
}

func thePoller() *poller { return nil }

func (*poller) do(context.Context, netip.AddrPort, []byte, time.Duration, time.Duration) exchangeResult {
	panic("netservice: no poller on this system")
}
