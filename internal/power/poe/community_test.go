package poe

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestCommunityNeverPrinted(t *testing.T) {
	t.Parallel()
	const secret = "hunter2-community"
	sw := SwitchConfig{Name: "sw-a", Address: "127.0.0.1:161", Version: V2c, Community: NewCommunity(secret)}

	var logs bytes.Buffer
	text := slog.New(slog.NewTextHandler(&logs, nil))
	text.Info("switch", "community", sw.Community, "config", sw)
	jsonLog := slog.New(slog.NewJSONHandler(&logs, nil))
	jsonLog.Info("switch", "community", sw.Community, "config", sw)
	js, err := json.Marshal(sw)
	if err != nil {
		t.Fatal(err)
	}
	printed := map[string]string{
		"%v": fmt.Sprintf("%v", sw), "%+v": fmt.Sprintf("%+v", sw), "%#v": fmt.Sprintf("%#v", sw),
		"%s": fmt.Sprintf("%s", sw.Community), "%d": fmt.Sprintf("%d", sw.Community), "%x": fmt.Sprintf("%x", sw.Community),
		"%q": fmt.Sprintf("%q", sw.Community), "String": sw.Community.String(),
		"json": string(js), "logs": logs.String(),
		"error": fmt.Errorf("talk to %v: %w", sw, fmt.Errorf("x")).Error(),
	}
	for how, out := range printed {
		if strings.Contains(out, secret) {
			t.Errorf("%s reveals the community: %s", how, out)
		}
		if how == "json" {
			out = strings.NewReplacer(`\u003c`, "<", `\u003e`, ">").Replace(out)
		}
		if !strings.Contains(out, redacted) && how != "error" {
			t.Errorf("%s does not say %s: %s", how, redacted, out)
		}
	}
	if sw.Community.Reveal() != secret {
		t.Errorf("Reveal() = %q, want the secret", sw.Community.Reveal())
	}
	var back Community
	if err := json.Unmarshal([]byte(`"`+secret+`"`), &back); err != nil || back.Reveal() != secret {
		t.Errorf("UnmarshalJSON = %v, %q", err, back.Reveal())
	}
}
