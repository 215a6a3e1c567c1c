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

// runWith runs walt with exactly the environment env.
func runWith(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = cli.Run(t.Context(), cli.Options{
		Args: args, Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut,
		Getenv: func(k string) string { return env[k] }, IsTerminal: func(any) bool { return false },
	})
	return out.String(), errOut.String(), code
}

// writeUserConfig writes <home>/.config/walt/config with mode perm.
func writeUserConfig(t *testing.T, home, text string, perm os.FileMode) string {
	t.Helper()
	path := filepath.Join(home, ".config", "walt", "config")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeTokens writes the token file of the configuration directory dir.
func writeTokens(t *testing.T, dir, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "tokens"), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// The server and the user come from --server, else WALT_SERVER (WALT_USER),
// else the user's configuration file, else the defaults.
func TestUserConfigPrecedence(t *testing.T) {
	e := newEnv(t)
	e.addNodes(t, reboottest.OK, "rpi1")
	const nowhere = "http://127.30.255.1:1" // nothing listens there
	home := t.TempDir()
	writeUserConfig(t, home, "# walt\nserver = \""+e.url+"\"\nuser = \"bob\"\n", 0o600)
	writeTokens(t, filepath.Join(home, ".config", "walt"), e.url+" "+e.token(t, "bob")+"\n")

	if _, errOut, code := runWith(t, map[string]string{"HOME": home}, "node", "acquire", "rpi1"); code != cli.ExitOK {
		t.Fatalf("server and user from the file: exit %d, stderr %q", code, errOut)
	}
	if out, _, _ := runWith(t, map[string]string{"WALT_SERVER": e.url, "WALT_TOKEN": e.token(t, "alice")}, "node", "show", "--all"); !strings.Contains(out, "bob") {
		t.Errorf("user = \"bob\" in the file: want rpi1 owned by bob, got\n%s", out)
	}
	if _, errOut, code := runWith(t, map[string]string{"HOME": home, "WALT_SERVER": nowhere}, "node", "show"); code == cli.ExitOK || !strings.Contains(errOut, "127.30.255.1") {
		t.Errorf("WALT_SERVER over the file: exit %d, stderr %q; want a failure to reach %s", code, errOut, nowhere)
	}
	if _, errOut, code := runWith(t, map[string]string{"HOME": home, "WALT_SERVER": nowhere}, "node", "show", "--server", e.url); code != cli.ExitOK {
		t.Errorf("--server over WALT_SERVER: exit %d, stderr %q", code, errOut)
	}
	if out, _, _ := runWith(t, map[string]string{"HOME": home, "WALT_USER": "carol"}, "node", "show"); strings.Contains(out, "rpi1") {
		t.Errorf("WALT_USER=carol over the file's bob: want no node of carol's, got\n%s", out)
	}
	// $XDG_CONFIG_HOME/walt/config, when set, over ~/.config/walt/config.
	xdg, other := t.TempDir(), t.TempDir()
	writeUserConfig(t, other, "server = \""+nowhere+"\"\n", 0o600)
	if err := os.MkdirAll(filepath.Join(xdg, "walt"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(xdg, "walt", "config"), []byte("server = \""+e.url+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	writeTokens(t, filepath.Join(xdg, "walt"), e.url+" "+e.token(t, "bob")+"\n")
	if _, errOut, code := runWith(t, map[string]string{"HOME": other, "XDG_CONFIG_HOME": xdg, "WALT_USER": "bob"}, "node", "show"); code != cli.ExitOK || errOut != "" {
		t.Errorf("file in $XDG_CONFIG_HOME: exit %d, stderr %q", code, errOut)
	}
}

func TestUserConfigErrors(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name, text string
		perm       os.FileMode
		code       int
		want       string
	}{
		{"unknown key", "server = \"" + e.url + "\"\npassword = \"x\"\n", 0o600, cli.ExitUsage, `:2: unknown setting "password"`},
		{"not TOML", "server: x\n", 0o600, cli.ExitUsage, ":1: toml:"},
		{"readable by others", "server = \"" + e.url + "\"\n", 0o644, cli.ExitOK, "can be read by other users (mode 0644)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			path := writeUserConfig(t, home, tc.text, tc.perm)
			_, errOut, code := runWith(t, map[string]string{"HOME": home, "WALT_USER": "alice", "WALT_TOKEN": e.token(t, "alice")}, "node", "show")
			if code != tc.code || !strings.Contains(errOut, path) || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q naming %s", code, errOut, tc.code, tc.want, path)
			}
		})
	}
}
