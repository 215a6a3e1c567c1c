package lab

import (
	"fmt"
	"log/slog"
	"syscall"
)

// fileBudget is how many file descriptors a lab may hold: idle, a listener
// per node, a socket per switch and some for the process; busy, one more
// connection per node being rebooted at once, up to 4096 of them (four
// times the server's default fan-out), and the boot reports.
func fileBudget(nodes, switches int) (idle, busy uint64) {
	idle = uint64(nodes + switches + 64)
	return idle, idle + uint64(min(nodes, 4096)) + 192
}

// fitFileLimit makes room for the lab's descriptors: it raises the soft
// RLIMIT_NOFILE to what the lab needs when busy, raising the hard limit too
// if the process may (root with CAP_SYS_RESOURCE), else up to the hard
// limit. A limit below the busy budget is logged; below the idle budget it
// is an error naming both numbers, before anything starts.
func fitFileLimit(nodes, switches int, log *slog.Logger) error {
	idle, busy := fileBudget(nodes, switches)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("read the open file limit: %w", err)
	}
	if lim.Cur >= busy {
		return nil
	}
	want := syscall.Rlimit{Cur: busy, Max: max(lim.Max, busy)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err == nil {
		return nil
	}
	if lim.Cur < lim.Max {
		raised := syscall.Rlimit{Cur: lim.Max, Max: lim.Max}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
			lim = raised
		}
	}
	if lim.Cur < idle {
		return fmt.Errorf("%d simulated nodes and %d switches need %d open files (%d while rebooting them), but this process may open %d (hard limit %d): raise the limit (ulimit -Hn, LimitNOFILE=) or simulate fewer nodes",
			nodes, switches, idle, busy, lim.Cur, lim.Max)
	}
	log.Warn("the open file limit is below what rebooting many nodes at once needs: some reboots may fail with too many open files",
		"limit", lim.Cur, "need", busy)
	return nil
}
