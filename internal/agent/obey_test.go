package agent

import (
	"bufio"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/walt-testbed/walt/internal/testutil"
)

// ask sends one request from the loopback address local and returns the
// first reply line.
func ask(t *testing.T, local, addr, req string) string {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "MODE single\n"+req+"\n")
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSuffix(line, "\n")
}

// With ObeyServers (walt-node --server), REBOOT, BLINK, DMESG and SHELL
// from a peer that is neither the server nor in AllowFrom get KO with the
// reason, logged, and start nothing; PING stays open; the server and the
// allowed prefix are obeyed.
func TestObeysItsServerOnly(t *testing.T) {
	t.Parallel()
	var logs testutil.Buffer
	cfg := Config{Root: makeImage(t), BootMode: Network, ObeyServers: true, AllowShell: true,
		Servers: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, AllowFrom: []netip.Prefix{netip.MustParsePrefix("127.0.9.0/24")}}
	journal := t.TempDir() + "/journal"
	cfg.Action = Action{Kind: ActionLog, LogFile: journal}
	addr := startAgentLogging(t, cfg, &logs)
	const stranger = "127.0.0.6"
	if got := ask(t, stranger, addr, "PING"); got != "OK" {
		t.Errorf("PING from a stranger = %q, want OK", got)
	}
	for _, req := range []string{"REBOOT", "BLINK 1", "DMESG", "SHELL"} {
		if got := ask(t, stranger, addr, req); !strings.HasPrefix(got, "KO ") || !strings.Contains(got, "obeys its walt server only") {
			t.Errorf("%s from a stranger = %q, want KO with the reason", req, got)
		}
	}
	if b, err := os.ReadFile(journal); err == nil && len(b) > 0 {
		t.Fatalf("a refused REBOOT started:\n%s", b)
	}
	if !strings.Contains(logs.String(), "request refused: the peer is not this node's server") || !strings.Contains(logs.String(), stranger) {
		t.Errorf("no log line for the refusal:\n%s", logs.String())
	}
	if got := ask(t, "127.0.9.3", addr, "BLINK 1"); strings.Contains(got, "obeys its walt server only") {
		t.Errorf("BLINK from --allow-from = %q, want obeyed", got)
	}
	if got := ask(t, "127.0.0.1", addr, "REBOOT"); got != "OK" {
		t.Fatalf("REBOOT from the server = %q, want OK", got)
	}
	if diff := cmp.Diff([]string{"force"}, journalLines(t, journal)); diff != "" {
		t.Errorf("procedure (-want +got):\n%s", diff)
	}
}

// Without ObeyServers (no --server), any peer is obeyed, as WalT's agent.
func TestObeysAnyPeerWithoutServer(t *testing.T) {
	t.Parallel()
	addr, journal := startAgent(t, Config{Root: makeImage(t), BootMode: Network, Servers: []netip.Addr{netip.MustParseAddr("127.0.0.1")}})
	if got := ask(t, "127.0.0.6", addr, "REBOOT"); got != "OK" {
		t.Fatalf("REBOOT from any peer without --server = %q, want OK", got)
	}
	if diff := cmp.Diff([]string{"force"}, journalLines(t, journal)); diff != "" {
		t.Errorf("procedure (-want +got):\n%s", diff)
	}
}
