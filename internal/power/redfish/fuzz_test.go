package redfish_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/power"
	"github.com/walt-testbed/walt/internal/power/redfish"
)

// FuzzParseURL: ParseURL accepts only http(s) URLs with a host, no
// credentials, no query, and a path naming the service or one system,
// all in printable ASCII; what it accepts parses again to the same URL.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"https://10.0.0.5", "http://127.0.0.1:8000/", "https://bmc1/redfish/v1/Systems/1",
		"https://u:p@bmc", "ftp://bmc", "https://bmc/redfish/v1/Systems/", "https://bmc/x?y=1", "https://[::1]:443/redfish/v1",
		"https://bmc/redfish/v1/Systems/a/b", "https://bmc:99999", "https://bmc:0x1f", "http:// bmc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := redfish.ParseURL(s)
		if err != nil {
			if len(err.Error()) > 200 {
				t.Fatalf("error of %d bytes", len(err.Error()))
			}
			return
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.Hostname() == "" || u.User != nil || u.RawQuery != "" || strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0 {
			t.Fatalf("ParseURL(%q) accepted %#v", s, u)
		}
		if again, err := redfish.ParseURL(u.String()); err != nil || again.String() != u.String() {
			t.Fatalf("ParseURL(%q) = %q, which parses as %v, %v", s, u, again, err)
		}
	})
}

// FuzzBMCReply: a BMC whose ComputerSystem answers with arbitrary bytes
// gets an error, bounded and without the password, never a crash or a
// hang; a reply the driver takes gives a cycle the driver reports.
func FuzzBMCReply(f *testing.F) {
	f.Add([]byte(`{"@odata.id":"/redfish/v1/Systems/1","Id":"1","PowerState":"Off"}`))
	f.Add([]byte(`{"@odata.id":"/redfish/v1/Systems/1","PowerState":"Sleeping","Actions":{"#ComputerSystem.Reset":{"target":"/x"}}}`))
	f.Add([]byte(`{"PowerState":7}`))
	f.Add([]byte(`[`))
	f.Add([]byte{})
	var mu sync.Mutex
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/redfish/v1/", "/redfish/v1":
			_, _ = w.Write([]byte(`{"@odata.id":"/redfish/v1/","Systems":{"@odata.id":"/redfish/v1/Systems"}}`))
		case "/redfish/v1/Systems":
			_, _ = w.Write([]byte(`{"Members":[{"@odata.id":"/redfish/v1/Systems/1"}]}`))
		case "/redfish/v1/Systems/1":
			mu.Lock()
			_, _ = w.Write(body)
			mu.Unlock()
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer srv.Close()
	cfg := redfish.DefaultConfig()
	cfg.Timeout, cfg.Poll, cfg.Settle = time.Second, time.Millisecond, 20*time.Millisecond
	d, err := redfish.New(cfg, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		mu.Lock()
		body = data
		mu.Unlock()
		tg := target(t, srv.URL, 0)
		tg.Password = power.NewSecret("fuzz-RF-s3cret")
		_, err := d.Cycle(t.Context(), tg)
		if err != nil && (len(err.Error()) > 1000 || strings.Contains(err.Error(), "fuzz-RF-s3cret")) {
			t.Fatalf("error too long or shows the password: %q", err)
		}
	})
}
