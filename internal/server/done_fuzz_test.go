package server

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/vocab"
)

// FuzzCheckDoneReport checks done reports decoded from any JSON body: a
// report is accepted only if every rule holds (checked here apart), and a
// refusal is invalid input naming a culprit.
func FuzzCheckDoneReport(f *testing.F) {
	for _, s := range []string{
		`{"mac":"52:54:00:00:70:03","boot_id":"b1","status":0}`,
		`{"mac":"52:54:00:00:70:03","boot_id":"b1","status":255,"metrics":{"boot_s":1.5,"a.b-c_d":-1e300}}`,
		`{"mac":"ff:ff:ff:ff:ff:ff","boot_id":"b1"}`,
		`{"mac":"52:54:00:00:70:03","boot_id":"","status":-1}`,
		`{"mac":"52:54:00:00:70:03","boot_id":"b\u0000","metrics":{"a/b":1}}`,
		`{"mac":"52:54:00:00:70:03","boot_id":"b1","metrics":{"":1}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var r api.DoneReport
		if json.Unmarshal(body, &r) != nil {
			return
		}
		mac, err := checkDoneReport(r)
		if err != nil {
			var ce *culpritError
			if !errors.Is(err, vocab.ErrInvalid) || !errors.As(err, &ce) || len(ce.names) == 0 {
				t.Fatalf("refusal %v is not invalid input naming a culprit", err)
			}
			return
		}
		if m, err := store.NormalizeMAC(r.MAC); err != nil || m != mac {
			t.Fatalf("accepted mac %q as %q", r.MAC, mac)
		}
		if r.BootID == "" || len(r.BootID) > maxBootID || !utf8.ValidString(r.BootID) {
			t.Fatalf("accepted boot id %q", r.BootID)
		}
		for _, c := range r.BootID {
			if !unicode.IsPrint(c) {
				t.Fatalf("accepted boot id %q", r.BootID)
			}
		}
		if r.Status < 0 || r.Status > 255 || len(r.Metrics) > api.MaxDoneMetrics {
			t.Fatalf("accepted status %d, %d metrics", r.Status, len(r.Metrics))
		}
		for k, v := range r.Metrics {
			if k == "" || len(k) > api.MaxMetricKey || math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("accepted metric %q=%v", k, v)
			}
			for _, c := range []byte(k) {
				if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
					t.Fatalf("accepted metric key %q", k)
				}
			}
		}
	})
}
