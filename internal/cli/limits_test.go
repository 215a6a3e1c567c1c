package cli_test

import (
	"strings"
	"testing"

	"github.com/walt-testbed/walt/internal/cli"
	"github.com/walt-testbed/walt/internal/reboot/reboottest"
)

// TestNumberArgumentBounds: --timeout and link ports are bounded before
// they reach the server; 18446744074 s used to wrap to a 0.29 s wait.
func TestNumberArgumentBounds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addNodes(t, reboottest.OK, "lim1")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"node", "wait", "--timeout", "18446744074", "lim1"}, "Error: --timeout 18446744074: want a number of seconds from 0 to 86400, or -1 for no timeout\n"},
		{[]string{"node", "wait", "--timeout", "10000000000", "lim1"}, "Error: --timeout 10000000000: want a number of seconds from 0 to 86400, or -1 for no timeout\n"},
		{[]string{"node", "reboot", "--wait", "--timeout", "86401", "lim1"}, "Error: --timeout 86401: want a number of seconds from 0 to 86400, or -1 for no timeout\n"},
		{[]string{"node", "wait", "--timeout", "-2", "lim1"}, "Error: --timeout -2: want a number of seconds from 0 to 86400, or -1 for no timeout\n"},
		{[]string{"device", "link", "lim1", "sw1", "4097"}, "Error: port: must be between 1 and 4096 (got 4097)\n"},
		{[]string{"device", "link", "lim1", "sw1", "18446744073709551617"}, "Error: port: must be between 1 and 4096 (got 18446744073709551617)\n"},
		{[]string{"device", "link", "lim1", "sw1", "0"}, "Error: port: must be between 1 and 4096 (got 0)\n"},
	}
	for _, c := range cases {
		stdout, stderr, code := e.run(t, false, c.args...)
		if code != cli.ExitUsage || stdout != "" || !strings.HasPrefix(stderr, c.want) {
			t.Errorf("walt %s: exit %d, stdout %q, stderr %q; want exit %d and %q", strings.Join(c.args, " "), code, stdout, stderr, cli.ExitUsage, c.want)
		}
	}
	if _, stderr, code := e.run(t, false, "node", "wait", "--timeout", "86400", "lim1"); code != cli.ExitOK {
		t.Errorf("walt node wait --timeout 86400 lim1 (booted): exit %d, stderr %q; want 0", code, stderr)
	}
}
