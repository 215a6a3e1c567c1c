package server

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/walt-testbed/walt/api"
)

// FuzzCampaignRequest decodes arbitrary campaign requests as the API
// does and checks them: an accepted one is within every bound, with its
// defaults filled in, and nothing panics.
func FuzzCampaignRequest(f *testing.F) {
	for _, s := range []string{
		`{"set":"all-nodes","repeat":10}`,
		`{"set":"n1","repeat":3,"mode":"free","hold":"30s","until_done":true,"done_timeout":"1m","boot_timeout":"5m","quarantine":2,"name":"warm"}`,
		`{"set":"n1","repeat":0}`,
		`{"set":"n1","repeat":10001}`,
		`{"set":"n1","repeat":1,"hold":"-1s"}`,
		`{"set":"n1","repeat":1,"boot_timeout":"1ns"}`,
		`{"set":"n1","repeat":1,"mode":"chaos"}`,
		`{"set":"n1","repeat":1,"name":"a\u0000b"}`,
		`{"set":"n1","repeat":1,"quarantine":-5}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req api.CampaignRequest
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if dec.Decode(&req) != nil {
			return
		}
		if checkRequest(&req) != nil || checkCampaignRequest(&req) != nil {
			return
		}
		switch {
		case req.Repeat < 1 || req.Repeat > api.MaxCampaignRepeat:
			t.Fatalf("accepted repeat %d", req.Repeat)
		case req.Mode != api.CampaignRounds && req.Mode != api.CampaignFree:
			t.Fatalf("accepted mode %q", req.Mode)
		case req.Quarantine < 1 || req.Quarantine > api.MaxQuarantine:
			t.Fatalf("accepted quarantine %d", req.Quarantine)
		case req.Hold < 0 || time.Duration(req.Hold) > 24*time.Hour:
			t.Fatalf("accepted hold %s", time.Duration(req.Hold))
		case time.Duration(req.BootTimeout) < time.Second || time.Duration(req.DoneTimeout) < time.Second:
			t.Fatalf("accepted timeouts %s, %s", time.Duration(req.BootTimeout), time.Duration(req.DoneTimeout))
		case len(req.Name) > api.MaxCampaignName || !utf8.ValidString(req.Name):
			t.Fatalf("accepted name %q", req.Name)
		}
	})
}
