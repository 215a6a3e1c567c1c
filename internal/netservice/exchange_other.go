//go:build !linux

package netservice

import (
	"context"
	"net/netip"
	"time"
)

// canExchange: elsewhere than on Linux, Requester.Do dials every address.
const canExchange = false

func rawExchange(context.Context, netip.AddrPort, []byte, time.Duration, time.Duration) exchangeResult {
	panic("netservice: exchange is for Linux")
}
