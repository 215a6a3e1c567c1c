package vnode

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/testutil"
)

// init re-runs this test binary as a bare supervisor when asked (see
// TestNoOrphanAfterSupervisorKilled).
func init() {
	if os.Getenv("VNODE_TEST_SUPERVISOR") == "" {
		return
	}
	os.Exit(childSupervisor(os.Getenv("VNODE_TEST_SUPERVISOR"), os.Getenv("VNODE_TEST_AGENT")))
}

// childSupervisor runs 3 process vnodes, prints "pids P1 P2 P3" once all
// answer, and runs until killed.
func childSupervisor(dataDir, agent string) int {
	b, err := NewProcessBackend(agent)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	s, err := New(Config{DataDir: dataDir, Backend: b, AddrPrefix: DefaultAddrPrefix})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	go s.Run(ctx)
	set := Settings{CPUCores: 1, RAMMiB: 64}
	for i := range 3 {
		if err := s.Create(Spec{Name: "orphan" + strconv.Itoa(i), Settings: set}); err != nil {
			fmt.Println("error", err)
			return 1
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	var pids []string
	for _, name := range s.Names() {
		addr, _ := s.Addr(name)
		for {
			st, _ := s.Status(name)
			if st.Running && ping(addr) {
				pids = append(pids, strconv.Itoa(st.PID))
				break
			}
			if time.Now().After(deadline) {
				fmt.Println("error timeout")
				return 1
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	fmt.Println("pids " + strings.Join(pids, " "))
	<-ctx.Done()
	return 0
}

// TestNoOrphanAfterSupervisorKilled kills a supervisor with SIGKILL, so no
// cleanup code runs in it: its machines must die too (Pdeathsig). They are
// reparented to PID 1, which here does not reap them, so "dead" means gone
// or a zombie.
func TestNoOrphanAfterSupervisorKilled(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "VNODE_TEST_SUPERVISOR="+t.TempDir(), "VNODE_TEST_AGENT="+agentBin)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = t.Output()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "pids ") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child supervisor said %q, %v; want pids", line, err)
	}
	var pids []int
	for _, f := range strings.Fields(line)[1:] {
		pid, _ := strconv.Atoi(f)
		pids = append(pids, pid)
		t.Cleanup(func() { // if the test fails, leave nothing behind
			if alive(pid) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		})
		if !alive(pid) {
			t.Fatalf("agent pid %d not alive before the kill", pid)
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	testutil.Eventually(t, 10*time.Second, fmt.Sprintf("agents %v to die with their supervisor", pids), func() bool {
		for _, pid := range pids {
			if alive(pid) {
				return false
			}
		}
		return true
	})
}
