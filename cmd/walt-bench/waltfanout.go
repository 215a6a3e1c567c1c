package main

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// waltFanout is a stand-in for WalT's own soft-reboot fan-out, in Python
// as WalT's is, so that walt-server's figures stand beside it on the same
// nodes in the same run.
//
//go:embed walt_fanout.py
var waltFanout []byte

// benchWaltFanout, when python3 is on PATH, soft-reboots the first n
// nodes with the WalT stand-in, runs times, and adds its wall time and CPU
// per node to s.
func benchWaltFanout(ctx context.Context, tb *testbed, n int, s *rebootStats) error {
	python, err := exec.LookPath("python3")
	if err != nil {
		return nil
	}
	script := filepath.Join(tb.dir, "walt_fanout.py")
	if err := os.WriteFile(script, waltFanout, 0o644); err != nil {
		return err
	}
	for range tb.o.runs {
		if err := tb.settle(ctx); err != nil {
			return err
		}
		out, err := exec.CommandContext(ctx, python, script, strconv.Itoa(tb.octet), strconv.Itoa(n), "REBOOT").Output()
		if err != nil {
			return fmt.Errorf("WalT fan-out stand-in: %w", err)
		}
		var wall, cpu int64
		var ok, failed int
		if _, err := fmt.Sscanf(string(bytes.TrimSpace(out)), "wall_us=%d cpu_us=%d ok=%d failed=%d", &wall, &cpu, &ok, &failed); err != nil {
			return fmt.Errorf("WalT fan-out stand-in printed %q: %w", out, err)
		}
		if failed > 0 {
			return fmt.Errorf("WalT fan-out stand-in: %d of %d nodes did not answer OK", failed, n)
		}
		s.waltWalls = append(s.waltWalls, time.Duration(wall)*time.Microsecond)
		s.waltCPU = append(s.waltCPU, time.Duration(cpu)*time.Microsecond/time.Duration(n))
	}
	return nil
}
