package cli_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/walt-testbed/walt/api"
)

// hostileAgent listens on a node address and answers every connection with
// reply, a KO whose reason is made to drive the user's terminal.
func hostileAgent(t *testing.T, reply string) string {
	t.Helper()
	ln, err := addrs.Listen()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, reply+"\n")
			c.Close()
		}
	}()
	host, _, _ := net.SplitHostPort(ln.Addr().String())
	return host
}

// TestPeerTextEscaped: what nodes say reaches the terminal escaped. An
// agent answering `KO \x1b[2J...` and a node reporting a model full of
// escapes do not clear the screen or retitle the window; --json stays
// JSON, with the text intact.
func TestPeerTextEscaped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const model = "rpi\x1b[2J\u009b31m\u202e"
	ip := hostileAgent(t, "KO \x1b[2J\x1b]0;pwned\a wiped")
	mac := "52:54:00:aa:00:01"
	if _, err := e.c.ReportNode(t.Context(), api.NodeReport{MAC: mac, IP: ip, Name: "evil", Model: model, BootMode: "network"}); err != nil {
		t.Fatal(err)
	}
	if _, _, code := e.run(t, false, "node", "acquire", "evil"); code != 0 {
		t.Fatalf("acquire: exit %d", code)
	}
	// Another user's cause shows in the history too.
	if _, err := e.c.Reboot(t.Context(), api.RebootRequest{Set: "evil", Requester: "alice", Cause: "\x1b[2Jbob's cause"}, nil); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{ // the history has the cause and the KO reason
		{"node", "reboot", "evil"},
		{"node", "show"},
		{"node", "history", "evil"},
	} {
		stdout, stderr, _ := e.run(t, false, args...)
		all := stdout + stderr
		if i := strings.IndexFunc(all, func(r rune) bool { return r == 0x1b || r == 0x07 || r == 0x9b || r == 0x202e }); i >= 0 {
			t.Errorf("walt %s printed a control character at %d:\n%q", strings.Join(args, " "), i, all)
		}
		// Shown escaped by the CLI (\x1b) or already made printable by
		// the server (?), never dropped.
		if !strings.Contains(all, `\x1b[2J`) && !strings.Contains(all, `?[2J`) {
			t.Errorf("walt %s does not show the escape escaped:\n%s", strings.Join(args, " "), all)
		}
	}
	stdout, _, code := e.run(t, false, "node", "show", "--json")
	var list api.NodeList
	if err := json.Unmarshal([]byte(stdout), &list); err != nil || code != 0 {
		t.Fatalf("node show --json: exit %d, %v:\n%s", code, err, stdout)
	}
	if len(list.Nodes) != 1 || list.Nodes[0].Model != model {
		t.Errorf("node show --json models = %s, want %q", fmt.Sprint(list.Nodes), model)
	}
}
