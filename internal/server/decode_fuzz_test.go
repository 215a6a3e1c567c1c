package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/server/servertest"
)

// fuzzEndpoints are the requests FuzzDecodeRequests sends. Reboots and
// waits are left out: a valid one would reboot or wait for real.
var fuzzEndpoints = []struct{ method, path string }{
	{"POST", "/node-reports"},
	{"POST", "/heartbeats"},
	{"POST", "/devices"},
	{"POST", "/config"},
	{"POST", "/ownership"},
	{"PUT", "/links"},
	{"POST", "/rescans"},
	{"POST", "/vnodes"},
	{"GET", "/config"},
	{"GET", "/reboots"},
	{"GET", "/devices"},
	{"GET", "/topology"},
	{"GET", "/nodes"},
	{"GET", "/campaigns"},
	{"GET", "/campaigns/1/boots"},
	{"GET", "/campaign-comparisons"},
}

// FuzzDecodeRequests sends arbitrary bodies and queries to the API's JSON
// endpoints, served by the real handler on a real SQLite store: no panic,
// no 500 (a bad request is the client's fault, never an internal error),
// an error body on every failure, and the switch stays a switch and the
// virtual node virtual.
func FuzzDecodeRequests(f *testing.F) {
	seeds := []struct {
		ep          int
		query, body string
	}{
		{0, "", `{"mac":"52:54:00:00:71:01","ip":"127.20.241.9","name":"evil","model":"x"}`},
		{0, "", `{"mac":"52:54:00:00:71:02","ip":"127.20.241.2","name":"vm1","virtual":false}`},
		{0, "", `{"mac":"52:54:00:00:71:09","ip":"127.20.241.9"} {}`},
		{1, "", `{"beats":[{"mac":"52:54:00:00:71:02","boot_id":"b"},{"mac":"00:00:00:00:00:00"}]}`},
		{2, "", `{"name":"d1","ip":"192.168.152.50","type":"switch"}`},
		{3, "", `{"set":"all-devices","settings":["type=switch"],"requester":"bob","force":true}`},
		{4, "x=1", `{"set":"vm1","action":"acquire","requester":"bob"}`},
		{5, "", `{"node":"vm1","switch":"sw1","port":-1}`},
		{6, "", `{"set":"sw1","requester":"alice"}`},
		{7, "", `{"name":"..","requester":"alice"}`},
		{8, "set=all-devices&requester=alice", ""},
		{9, "limit=-1&node=vm1", ""},
		{10, "", ""},
		{11, "%zz", ""},
		{12, "booted=true&booted=false", ""},
	}
	for _, s := range seeds {
		f.Add(uint8(s.ep), s.query, []byte(s.body))
	}
	e := servertest.New(f, addrs, nil)
	ctx := f.Context()
	if _, err := e.Client.AddDevice(ctx, api.AddDevice{Name: "sw1", IP: "192.168.152.2", MAC: "52:54:00:00:71:01", Type: "switch"}); err != nil {
		f.Fatal(err)
	}
	if _, err := e.Client.ReportNode(ctx, api.NodeReport{MAC: "52:54:00:00:71:02", IP: "127.20.241.2", Name: "vm1", Virtual: true}); err != nil {
		f.Fatal(err)
	}
	h := e.Server.Handler()
	f.Fuzz(func(t *testing.T, ep uint8, query string, body []byte) {
		endpoint := fuzzEndpoints[int(ep)%len(fuzzEndpoints)]
		req, err := http.NewRequestWithContext(t.Context(), endpoint.method, api.Prefix+endpoint.path, bytes.NewReader(body))
		if err != nil {
			t.Skip()
		}
		req.URL.RawQuery = query
		req.Header.Set("Authorization", "Bearer "+e.AdminToken) // the decoders, not the authentication
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s %s?%s %q: status %d, body %s", endpoint.method, endpoint.path, query, body, rec.Code, rec.Body)
		}
		if rec.Code >= 300 {
			var eb api.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error == nil || eb.Error.Code == "" {
				t.Fatalf("%s %s?%s %q: status %d with body %q, want an error body", endpoint.method, endpoint.path, query, body, rec.Code, rec.Body)
			}
		}
		devs, err := e.Client.Devices(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		for _, d := range devs.Devices {
			switch d.MAC {
			case "52:54:00:00:71:01":
				seen++
				if d.Type != "switch" || d.Name != "sw1" {
					t.Fatalf("after %s %s %q, the switch is %+v", endpoint.method, endpoint.path, body, d)
				}
			case "52:54:00:00:71:02":
				seen++
				if !d.Virtual || d.Type != "node" || d.Name != "vm1" {
					t.Fatalf("after %s %s %q, the virtual node is %+v", endpoint.method, endpoint.path, body, d)
				}
			}
		}
		if seen != 2 {
			t.Fatalf("after %s %s %q, %d of the switch and the virtual node left", endpoint.method, endpoint.path, body, seen)
		}
	})
}
