package main

import (
	"io"
	"strings"
	"testing"
)

// FuzzSettings checks the settings file parser on any input: it returns
// only walt-node's own settings, each with the line it came from, or an
// error naming the file; and setting the flags from what it returned never
// panics.
func FuzzSettings(f *testing.F) {
	for _, seed := range []string{
		"",
		"# a node image\nreboot-action = system\nboot-mode = hybrid-volatile\nvirtual = false\n",
		"reboot-action = \"exit\"\r\nmax-conns-per-peer = 4\n",
		"config = /etc/other.conf\n",
		"reboot_speed = fast\n",
		"= value\nnot a setting\n",
		"hook-timeout = soon\nallow-shell = maybe\nmax-conns = -1\n",
		"ip = 127.69.255.1\nmac = 52:54:00:69:00:01\n",
		"server-ip = 10.0.0.1, fe80::1\n" + strings.Repeat("#", maxSettingsFile),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data string) {
		var o options
		fs, _ := newFlags(&o, io.Discard)
		got, err := parseSettings(fs, "node.conf", strings.NewReader(data))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "node.conf:") && !strings.HasPrefix(err.Error(), "settings file node.conf:") {
				t.Fatalf("parseSettings() = %v, an error not naming the file", err)
			}
			if len(err.Error()) > 200 {
				t.Fatalf("parseSettings() error of %d bytes: %.100s...", len(err.Error()), err)
			}
			return
		}
		if len(data) > maxSettingsFile {
			t.Fatalf("parseSettings() accepted %d bytes, over %d", len(data), maxSettingsFile)
		}
		lines := strings.Count(data, "\n") + 1
		for k, s := range got {
			if fs.Lookup(k) == nil || k == "config" {
				t.Fatalf("parseSettings() returned setting %q, not a walt-node flag", k)
			}
			if s.line < 1 || s.line > lines {
				t.Fatalf("setting %s from line %d of a %d-line file", k, s.line, lines)
			}
			// A bad value is an error fillUnset reports with file and line.
			_ = fs.Set(k, s.value)
		}
	})
}
