package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/config"
	"github.com/walt-testbed/walt/internal/store/sqlite"
	"github.com/walt-testbed/walt/internal/testutil"
)

// writeConfig writes a configuration file and returns its path.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "server.conf")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runErr runs walt-server, which must refuse to start, and returns its error.
func runErr(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	log := &testutil.Buffer{}
	err := run(ctx, append([]string{"--data", t.TempDir(), "--listen", "127.64.0.5:0"}, args...), io.Discard, log)
	if ctx.Err() != nil || err == nil {
		t.Fatalf("run(%q) = %v, want an error at once\n%s", args, err, log)
	}
	return err.Error()
}

// Each setting comes from the flag, else WALT_<FLAG>, else the file, else
// its default; refusals name where the value came from.
func TestConfigPrecedence(t *testing.T) {
	file := writeConfig(t, "# walt-server\nlisten = \"127.64.0.5:0\"\nfanout = 0\nreply-timeout = \"0s\"\ndb = \"mysql://file\"\n")
	for _, tc := range []struct {
		name    string
		env     map[string]string
		args    []string
		want    []string
		wantNot []string
	}{
		{"file over default", nil, nil,
			[]string{file + ":3: fanout: must be between 1 and 1048576 (got 0)", file + ":4: reply-timeout: must be between 1ms and 10m"}, nil},
		{"environment over file", map[string]string{"WALT_FANOUT": "0", "WALT_REPLY_TIMEOUT": "11m"}, nil,
			[]string{"WALT_FANOUT: must be between 1 and 1048576 (got 0)", "WALT_REPLY_TIMEOUT: must be between 1ms and 10m (got 11m)"}, []string{file}},
		{"flag over environment", map[string]string{"WALT_FANOUT": "0", "WALT_REPLY_TIMEOUT": "0s"}, []string{"--fanout", "0", "--reply-timeout", "1s"},
			[]string{"--fanout: must be between 1 and 1048576 (got 0)"}, []string{"WALT_", "reply-timeout"}},
		{"db from the file", map[string]string{"WALT_FANOUT": "1", "WALT_REPLY_TIMEOUT": "1s"}, nil,
			[]string{file + `:5: db "mysql://file": want a postgres:// URL`}, nil},
		{"WALT_DB over the file", map[string]string{"WALT_FANOUT": "1", "WALT_REPLY_TIMEOUT": "1s", "WALT_DB": "mysql://env"}, nil,
			[]string{`WALT_DB "mysql://env": want a postgres:// URL`}, []string{file}},
		{"--db over WALT_DB", map[string]string{"WALT_FANOUT": "1", "WALT_REPLY_TIMEOUT": "1s", "WALT_DB": "mysql://env"}, []string{"--db", "mysql://flag"},
			[]string{`--db "mysql://flag": want a postgres:// URL`}, []string{"env"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("WALT_DB", "")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			err := runErr(t, append([]string{"--config", file}, tc.args...)...)
			for _, w := range tc.want {
				if !strings.Contains(err, w) {
					t.Errorf("error %q, want it to contain %q", err, w)
				}
			}
			for _, w := range tc.wantNot {
				if strings.Contains(err, w) {
					t.Errorf("error %q, want no %q in it", err, w)
				}
			}
		})
	}
}

// A file, chosen with --config or WALT_CONFIG, sets what the server runs
// with; the environment still wins over it.
func TestConfigFileStartsServer(t *testing.T) {
	t.Setenv("WALT_DB", "")
	data := t.TempDir()
	file := writeConfig(t, "data = '"+data+"'\nlog-format = \"json\"\nvnode-backend = \"none\"\nmax-conns = 8\npowersave = \"1h\"\ndebug = true\n")
	t.Setenv("WALT_CONFIG", file)
	_, log, stop := startServer(t, "127.64.0.5:12401")
	stop()
	if _, err := os.Stat(filepath.Join(data, sqlite.FileName)); err != nil {
		t.Errorf("database not in the data directory of the file: %v", err)
	}
	if want := `"msg":"configuration file read","file":` + strconv.Quote(file); !strings.Contains(log.String(), want) {
		t.Errorf("log lacks %s:\n%s", want, log)
	}
	lines := bytes.Split(bytes.TrimSpace([]byte(log.String())), []byte("\n"))
	for _, l := range lines {
		if !json.Valid(l) {
			t.Fatalf("log-format = \"json\" in the file, got a line that is not JSON: %q", l)
		}
	}

	t.Setenv("WALT_LOG_FORMAT", "text")
	_, log, stop = startServer(t, "127.64.0.5:12402")
	stop()
	if l, _, _ := strings.Cut(log.String(), "\n"); json.Valid([]byte(l)) || !strings.Contains(l, "level=") {
		t.Errorf("WALT_LOG_FORMAT=text over the file's json, got %q", l)
	}
}

// --log-json stays, as --log-format json.
func TestLogJSONAlias(t *testing.T) {
	t.Setenv("WALT_DB", "")
	_, log, stop := startServer(t, "127.64.0.5:12403", "--data", t.TempDir(), "--vnode-backend", "none", "--log-json")
	stop()
	if l, _, _ := strings.Cut(log.String(), "\n"); !json.Valid([]byte(l)) {
		t.Errorf("--log-json, got a line that is not JSON: %q", l)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Setenv("WALT_DB", "")
	big := writeConfig(t, "# "+strings.Repeat("x", config.MaxFile)+"\n")
	for _, tc := range []struct {
		name, file, want string
	}{
		{"unknown key", "fanout = 4\nfan-out = 4\n", ":2: unknown setting \"fan-out\""},
		{"not a setting", "version = true\n", ":1: unknown setting \"version\""},
		{"bad duration", "\nconnect-timeout = \"soon\"\n", `:2: connect-timeout: "soon": want a duration such as 30s or 1m30s`},
		{"bad number", "max-conns = \"many\"\n", `:1: max-conns: "many": want a whole number`},
		{"table", "[server]\nfanout = 4\n", ":1: [tables] are not settings"},
		{"dotted key", "vnode.backend = \"none\"\n", `:1: dotted key "vnode"`},
		{"array", "listen = [\"a\", \"b\"]\n", ":1: \"listen\": want a string, number or boolean"},
		{"syntax", "fanout = 4\nlisten = \n", ":2: toml:"},
		{"duplicate", "fanout = 4\nfanout = 5\n", ":2: toml:"},
		{"bad log format", "log-format = \"xml\"\n", `:1: log-format "xml": want text or json`},
		{"bad backend", "vnode-backend = \"vmware\"\n", `:1: vnode-backend "vmware": want auto, qemu, process or none`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, tc.file)
			if err := runErr(t, "--config", path); !strings.Contains(err, path+tc.want) {
				t.Errorf("error %q, want %q", err, path+tc.want)
			}
		})
	}
	if err := runErr(t, "--config", big); !strings.Contains(err, big+": over 1048576 bytes") {
		t.Errorf("oversize file: error %q", err)
	}
	missing := filepath.Join(t.TempDir(), "none.conf")
	if err := runErr(t, "--config", missing); !strings.Contains(err, "configuration file: open "+missing) {
		t.Errorf("missing --config file: error %q", err)
	}
	t.Setenv("WALT_CONFIG", missing)
	if err := runErr(t); !strings.Contains(err, missing) {
		t.Errorf("missing WALT_CONFIG file: error %q", err)
	}
}

// The example of docs/server.md sets every setting, each to a valid value.
func TestConfigDocExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/server.md")
	if err != nil {
		t.Fatal(err)
	}
	_, example, _ := strings.Cut(string(doc), "```toml\n")
	example, _, _ = strings.Cut(example, "```")
	var help bytes.Buffer
	run(t.Context(), []string{"--help"}, io.Discard, &help)
	for _, l := range strings.Split(help.String(), "\n") {
		name, ok := strings.CutPrefix(l, "  -")
		if name, _, _ = strings.Cut(name, " "); ok && isSetting(name) && !strings.Contains(example, "\n"+name+" = ") {
			t.Errorf("docs/server.md: example lacks %s", name)
		}
	}
	// A bad flag stops walt-server before it uses the example's data.
	t.Setenv("WALT_DB", "")
	if err := runErr(t, "--config", writeConfig(t, example), "--fanout", "0"); err != "--fanout: must be between 1 and 1048576 (got 0)" {
		t.Errorf("example refused: %s", err)
	}
}

// --cpuprofile writes a CPU profile of the run, readable by the server's
// user only, once the server stops.
func TestCPUProfile(t *testing.T) {
	prof := filepath.Join(t.TempDir(), "cpu.prof")
	c, _, stop := startServer(t, "127.64.0.5:12404", "--data", t.TempDir(), "--vnode-backend", "none", "--cpuprofile", prof)
	if _, err := c.Devices(t.Context()); err != nil {
		t.Fatal(err)
	}
	stop()
	fi, err := os.Stat(prof)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v, want 0600", prof, fi.Mode().Perm())
	}
	data, err := os.ReadFile(prof)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte{0x1f, 0x8b}) { // pprof's format is gzipped
		t.Errorf("%s: %d bytes, not a gzipped profile", prof, len(data))
	}
}
