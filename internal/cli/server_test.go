package cli_test

import (
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/walt-testbed/walt/api"
)

// walt server status prints the readiness answer, as text or JSON, and
// with --timeout waits for a server that does not answer, then says so.
func TestServerStatus(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	stdout, stderr, code := e.run(t, false, "server", "status")
	if code != 0 || !strings.Contains(stdout, "version:  ") || !strings.Contains(stdout, "vnodes:   none") || !strings.Contains(stdout, "uptime:   ") {
		t.Errorf("server status: exit %d\n%s%s", code, stdout, stderr)
	}
	stdout, _, code = e.run(t, false, "server", "status", "--json")
	var h api.Health
	if err := json.Unmarshal([]byte(stdout), &h); err != nil || code != 0 || h.Status != "ok" || h.API != api.Version {
		t.Errorf("server status --json: exit %d, %v, %+v", code, err, h)
	}

	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	_, stderr, code = e.run(t, false, "server", "status", "--server", dead, "--timeout", "1")
	if code != 1 || !strings.Contains(stderr, "no answer within 1s") || !strings.Contains(stderr, "connection refused") {
		t.Errorf("server status on a dead port: exit %d, stderr %q; want 1 naming the wait and the refusal", code, stderr)
	}
	if _, stderr, code = e.run(t, false, "server", "status", "--timeout", "-1"); code != 2 || !strings.Contains(stderr, "--timeout -1") {
		t.Errorf("server status --timeout -1: exit %d, stderr %q; want 2", code, stderr)
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	if stdout, _, code := runOffline(t, "--version"); code != 0 || !strings.HasPrefix(stdout, "walt ") {
		t.Errorf("walt --version: exit %d, stdout %q", code, stdout)
	}
}
