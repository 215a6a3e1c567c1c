package cli_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walt-testbed/walt/internal/cli"
	"github.com/walt-testbed/walt/internal/reboot/reboottest"
)

// walt login reads the token from stdin, checks it with the server and
// stores it, mode 0600; later commands send it. The token is printed
// nowhere.
func TestLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addNodes(t, reboottest.OK, "rpi1")
	home := t.TempDir()
	env := map[string]string{"HOME": home, "WALT_SERVER": e.url}
	tok := e.token(t, "dave")
	login := func(stdin string) (string, string, int) {
		var out, errOut bytes.Buffer
		code := cli.Run(t.Context(), cli.Options{Args: []string{"login"}, Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut,
			Getenv: func(k string) string { return env[k] }, IsTerminal: func(any) bool { return false }})
		return out.String(), errOut.String(), code
	}
	if _, _, code := runWith(t, env, "node", "acquire", "rpi1"); code != cli.ExitFailure {
		t.Errorf("node acquire before login: exit %d, want 1", code)
	}
	for _, bad := range []string{"", "walt_nope\n", strings.ToUpper(tok) + "\n"} {
		out, errOut, code := login(bad)
		if code == cli.ExitOK || strings.Contains(out+errOut, tok) {
			t.Errorf("login with %.12q: exit %d, %s%s", bad, code, out, errOut)
		}
	}
	path := filepath.Join(home, ".config", "walt", "tokens")
	if _, err := os.Stat(path); err == nil {
		t.Fatal("a refused login wrote the token file")
	}
	out, errOut, code := login(tok + "\n")
	if code != cli.ExitOK || !strings.Contains(out, "as dave") || strings.Contains(out+errOut, tok) {
		t.Fatalf("login: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file %s: %v, %v; want mode 0600", path, fi, err)
	}
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), e.url+" "+tok) {
		t.Errorf("token file:\n%s", b)
	}
	if _, errOut, code := runWith(t, env, "node", "acquire", "rpi1"); code != cli.ExitOK {
		t.Fatalf("node acquire after login: exit %d, %s", code, errOut)
	}
	if out, _, _ := runWith(t, env, "node", "show"); !strings.Contains(out, "rpi1") {
		t.Errorf("node show (my nodes, the token's user) after acquire:\n%s", out)
	}
	// WALT_USER naming someone else than the token's user is refused.
	env["WALT_USER"] = "erin"
	if _, errOut, code := runWith(t, env, "node", "release", "rpi1"); code == cli.ExitOK || !strings.Contains(errOut, "requester 'erin' is not the user of this token (dave)") {
		t.Errorf("node release with WALT_USER=erin: exit %d, %s", code, errOut)
	}
	delete(env, "WALT_USER")
	// A malformed WALT_TOKEN is a usage error naming it, not the value.
	env["WALT_TOKEN"] = "walt_bad"
	if _, errOut, code := runWith(t, env, "node", "show"); code != cli.ExitUsage || !strings.Contains(errOut, "WALT_TOKEN") || strings.Contains(errOut, "walt_bad") {
		t.Errorf("bad WALT_TOKEN: exit %d, %s", code, errOut)
	}
}

// walt log show --audit prints who changed what, for admins only.
func TestLogShowAudit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addNodes(t, reboottest.OK, "rpi1")
	if _, _, code := e.run(t, false, "node", "acquire", "rpi1"); code != cli.ExitOK {
		t.Fatal("acquire failed")
	}
	out, errOut, code := e.run(t, false, "log", "show", "--audit")
	if code != cli.ExitOK || !strings.Contains(out, "alice from 127.0.0.1: POST /api/v1/ownership acquire set=rpi1 -> 200") {
		t.Errorf("log show --audit as alice (admin): exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, _, _ = e.run(t, false, "log", "show", "--audit", "--json")
	if !strings.Contains(out, `"route":"POST /api/v1/ownership"`) {
		t.Errorf("log show --audit --json: %q", out)
	}
	_, errOut, code = runWith(t, map[string]string{"WALT_SERVER": e.url, "WALT_TOKEN": e.token(t, "bob")}, "log", "show", "--audit")
	if code != cli.ExitFailure || !strings.Contains(errOut, "Reading the audit trail is for admins, and bob is not one") {
		t.Errorf("log show --audit as bob: exit %d, %s", code, errOut)
	}
}
