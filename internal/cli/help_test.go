package cli_test

import (
	"bytes"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/walt-testbed/walt/internal/cli"
	"github.com/walt-testbed/walt/internal/server"
	"github.com/walt-testbed/walt/internal/vnode"
)

// runOffline runs walt for commands that need no server.
func runOffline(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = cli.Run(t.Context(), cli.Options{
		Args: args, Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut,
		Getenv: func(k string) string {
			return map[string]string{"WALT_SERVER": "http://127.0.0.1:1", "WALT_USER": "alice"}[k]
		},
		IsTerminal: func(any) bool { return false },
	})
	return out.String(), errOut.String(), code
}

// topics returns the topic names printed by walt help list, in order.
func topics(t *testing.T) []string {
	t.Helper()
	stdout, stderr, code := runOffline(t, "help", "list")
	if code != 0 {
		t.Fatalf("walt help list: exit %d, stderr %q", code, stderr)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n")[1:] {
		names = append(names, strings.Fields(line)[0])
	}
	return names
}

func TestHelpTopics(t *testing.T) {
	t.Parallel()
	names := topics(t)
	if !slices.IsSorted(names) {
		t.Errorf("walt help list = %v, want sorted", names)
	}
	// The topics WalT's users and the seed document refer to, and ours.
	for _, want := range []string{"node-reboot", "boot-modes", "device-config", "device-sets",
		"node-ownership", "campaigns", "lab", "web-api"} {
		if !slices.Contains(names, want) {
			t.Errorf("walt help list = %v, want topic %q", names, want)
		}
	}
	for _, name := range names {
		stdout, stderr, code := runOffline(t, "help", "show", name)
		if code != 0 || !strings.HasPrefix(stdout, "# ") || len(stdout) < 200 || stderr != "" {
			t.Errorf("walt help show %s: exit %d, %d bytes, stderr %q; want exit 0 and a titled text", name, code, len(stdout), stderr)
		}
	}
}

func TestHelpUnknownTopic(t *testing.T) {
	t.Parallel()
	stdout, stderr, code := runOffline(t, "help", "show", "frobnicate")
	if code != cli.ExitUsage || stdout != "" || !strings.Contains(stderr, `unknown help topic "frobnicate"`) ||
		!strings.Contains(stderr, "node-reboot, web-api") || !strings.Contains(stderr, "Try: walt help list") {
		t.Errorf("walt help show frobnicate: exit %d, stdout %q, stderr %q; want exit 2 naming the topic and the list", code, stdout, stderr)
	}
}

// TestTopHelpSorted: walt --help lists categories and commands sorted, not
// in registration order, and hides the completion scripts' own commands.
func TestTopHelpSorted(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--help"}, {"help"}, {"node", "--help"}} {
		stdout, _, code := runOffline(t, args...)
		var listed []string
		for _, line := range strings.Split(stdout, "\n") {
			if f := strings.Fields(line); strings.HasPrefix(line, "    ") && len(f) >= 2 && !strings.HasPrefix(f[0], "walt") {
				listed = append(listed, f[0]+" "+f[1])
			}
		}
		if code != 0 || len(listed) < 5 || !slices.IsSorted(listed) {
			t.Errorf("walt %v: exit %d, commands %v; want exit 0, sorted", args, code, listed)
		}
		if slices.Contains(listed, "completion words") || slices.Contains(listed, "completion names") {
			t.Errorf("walt %v lists hidden commands: %v", args, listed)
		}
	}
}

// serverSettings returns the names and defaults of the server's settings
// (a test may import the server; the CLI itself must not).
func serverSettings(t *testing.T) map[string]string {
	t.Helper()
	defaults := server.SettingDefaults()
	if len(defaults) < 10 {
		t.Fatalf("the server knows %d settings (%v), want at least 10", len(defaults), defaults)
	}
	return defaults
}

// TestSettingsTables: the settings tables of the device-config topic and of
// docs/cli.md are written by hand, so each must have a row for every
// setting the server knows, ending with the server's default.
func TestSettingsTables(t *testing.T) {
	t.Parallel()
	topic, _, _ := runOffline(t, "help", "show", "device-config")
	doc, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	defaults := serverSettings(t)
	for _, key := range vnode.Keys() {
		if _, ok := defaults[key]; !ok {
			t.Errorf("vnode setting %q is not in the server's table", key)
		}
	}
	for name, text := range map[string]string{"walt help show device-config": topic, "docs/cli.md": string(doc)} {
		rows := map[string]string{}
		for _, line := range strings.Split(text, "\n") {
			if key, ok := strings.CutPrefix(line, "| `"); ok {
				key, _, _ = strings.Cut(key, "`")
				rows[key] = line
			}
		}
		for key, def := range defaults {
			row, ok := rows[key]
			switch {
			case !ok:
				t.Errorf("%s has no table row for setting %q", name, key)
			case def != "" && !strings.Contains(row, "| `"+def+"`"):
				t.Errorf("%s: row of %q does not give the default %q:\n%s", name, key, def, row)
			}
		}
	}
}

var (
	codeSpan = regexp.MustCompile("`([^`\n]+)`")
	flagWord = regexp.MustCompile(`^--([a-z][a-z-]*)`)
)

// TestHelpTopicsMatchCommands: every walt command line in the topics names
// a command that exists, with switches it has, and topics that exist, so the
// topics stay consistent with the per-command --help.
func TestHelpTopicsMatchCommands(t *testing.T) {
	t.Parallel()
	names := topics(t)
	checked := 0
	for _, topic := range names {
		text, _, _ := runOffline(t, "help", "show", topic)
		var cmdLines []string
		for _, line := range strings.Split(text, "\n") {
			if trimmed := strings.TrimSpace(line); strings.HasPrefix(line, "    ") && strings.HasPrefix(trimmed, "walt ") {
				cmdLines = append(cmdLines, trimmed) // an example, indented
			}
			for _, m := range codeSpan.FindAllStringSubmatch(line, -1) {
				if strings.HasPrefix(m[1], "walt ") {
					cmdLines = append(cmdLines, m[1])
				}
			}
		}
		for _, line := range cmdLines {
			words := strings.Fields(line)
			if len(words) < 3 {
				continue // "walt node" in prose
			}
			help, _, code := runOffline(t, words[1], words[2], "--help")
			if code != 0 {
				t.Errorf("topic %s: %q: no command walt %s %s", topic, line, words[1], words[2])
				continue
			}
			checked++
			if words[1] == "help" && words[2] == "show" && len(words) > 3 && !slices.Contains(names, words[3]) {
				t.Errorf("topic %s: %q: no topic %q", topic, line, words[3])
			}
			for _, w := range words[3:] {
				if w == "#" || w == "||" || w == "<" || w == ">" {
					break
				}
				if m := flagWord.FindStringSubmatch(w); m != nil && m[1] != "help" && !strings.Contains(help, "    --"+m[1]+" ") {
					t.Errorf("topic %s: %q: walt %s %s has no switch --%s", topic, line, words[1], words[2], m[1])
				}
			}
		}
	}
	if checked < 30 {
		t.Errorf("checked %d command lines in the topics, want at least 30", checked)
	}
}
