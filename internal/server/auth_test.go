package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/accounts"
	"github.com/walt-testbed/walt/internal/auth"
	"github.com/walt-testbed/walt/internal/reboot/reboottest"
	"github.com/walt-testbed/walt/internal/store"
)

// authEndpoints is every route, with a body that would change something
// if it were served.
var authEndpoints = []struct {
	method, path, body string
	open               bool
}{
	{"GET", "/health", "", true},
	{"GET", "/nodes", "", false},
	{"GET", "/devices", "", false},
	{"POST", "/devices", `{"name":"sw9","ip":"192.168.152.9","type":"switch"}`, false},
	{"DELETE", "/devices/rpi1", "", false},
	{"POST", "/node-reports", `{"mac":"52:54:00:00:99:01","ip":"127.20.99.1","name":"nr1","model":"rpi-b"}`, true},
	{"GET", "/config?set=rpi1", "", false},
	{"POST", "/config", `{"set":"rpi1","settings":["kexec.allow=false"]}`, false},
	{"POST", "/ownership", `{"set":"rpi1","action":"acquire"}`, false},
	{"PUT", "/links", `{"node":"rpi1","switch":"sw1","port":3}`, false},
	{"POST", "/rescans", `{}`, false},
	{"GET", "/topology", "", false},
	{"GET", "/switches/sw1/ports", "", false},
	{"POST", "/reboots", `{"set":"rpi1"}`, false},
	{"GET", "/reboots?node=rpi1", "", false},
	{"POST", "/heartbeats", `{"nodes":[]}`, true},
	{"POST", "/waits", `{"set":"rpi1","timeout":"1ms"}`, false},
	{"GET", "/logs", "", false},
	{"GET", "/whoami", "", false},
	{"GET", "/vnodes", "", false},
	{"POST", "/vnodes", `{"name":"vn9"}`, false},
	{"DELETE", "/vnodes/vn1", "", false},
	{"GET", "/vnodes/vn1/console", "", false},
}

// send sends one request with the Authorization header auth ("" for
// none) and returns the status and body.
func send(t *testing.T, url, method, path, body, authz string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url+api.Prefix+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Every endpoint but readiness and the node reports refuses a request
// without a valid token with 401, changing nothing, and never repeats the
// token; with a valid one it is served.
func TestEveryEndpointNeedsAToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.addNode(t, "rpi1", reboottest.OK)
	if _, err := e.c.AddDevice(t.Context(), api.AddDevice{Name: "sw1", IP: "192.168.152.2", Type: "switch"}); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	expired, err := accounts.Add(ctx, e.Store, "old", false, time.Now().Add(-time.Second))
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := accounts.Add(ctx, e.Store, "gone", false, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.RevokeTokens(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	removed, err := accounts.Add(ctx, e.Store, "ex", true, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Store.RemoveUser(ctx, "ex"); err != nil {
		t.Fatal(err)
	}
	unknown := auth.NewToken()
	creds := []struct{ name, header, secret, want string }{
		{"no token", "", "", "needs a token"},
		{"not bearer", "Basic YWxpY2U6cHc=", "YWxpY2U6cHc=", "Bearer TOKEN"},
		{"malformed", "Bearer walt_short", "walt_short", "malformed token"},
		{"unknown", auth.Bearer(unknown), unknown.Reveal(), "unknown or revoked"},
		{"revoked", auth.Bearer(revoked), revoked.Reveal(), "unknown or revoked"},
		{"user removed", auth.Bearer(removed), removed.Reveal(), "unknown or revoked"},
		{"expired", auth.Bearer(expired), expired.Reveal(), "expired"},
	}
	before, _ := e.Store.Devices(ctx)
	for _, ep := range authEndpoints {
		for _, c := range creds {
			status, body := send(t, e.URL, ep.method, ep.path, ep.body, c.header)
			if ep.open {
				if status == http.StatusUnauthorized {
					t.Errorf("%s %s, %s: 401, want served (open route)", ep.method, ep.path, c.name)
				}
				continue
			}
			var eb api.ErrorBody
			json.Unmarshal([]byte(body), &eb)
			if status != http.StatusUnauthorized || eb.Error == nil || eb.Error.Code != api.CodeUnauthenticated || !strings.Contains(body, c.want) {
				t.Errorf("%s %s, %s: %d %s; want 401 unauthenticated saying %q", ep.method, ep.path, c.name, status, body, c.want)
			}
			if c.secret != "" && strings.Contains(body, c.secret) {
				t.Errorf("%s %s, %s: the answer repeats the credentials: %s", ep.method, ep.path, c.name, body)
			}
		}
	}
	after, _ := e.Store.Devices(ctx)
	// Only the open node report added a device (nr1); the refused calls
	// changed nothing.
	if len(after) != len(before)+1 {
		t.Errorf("devices after refused calls: %d, want %d (+ the node report's)", len(after), len(before)+1)
	}
	for _, d := range after {
		if d.Name == "rpi1" && d.Owner != "" || d.Name == "sw9" || d.Name == "vn9" {
			t.Errorf("device %+v changed by a refused call", d)
		}
	}
	if rs, _ := e.Store.Reboots(ctx, store.RebootFilter{}); len(rs) != 0 {
		t.Errorf("reboots recorded by refused calls: %+v", rs)
	}
	for _, ep := range authEndpoints {
		if status, body := send(t, e.URL, ep.method, ep.path, ep.body, "Bearer "+e.AdminToken); status == http.StatusUnauthorized {
			t.Errorf("%s %s with the admin's token: 401 %s", ep.method, ep.path, body)
		}
	}
}

// The identity is the token's user: a requester field naming someone else
// is refused, changing nothing; an empty one is filled in.
func TestForgedRequesterIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.addNode(t, "rpi1", reboottest.OK)
	if _, err := e.Client.Ownership(t.Context(), api.OwnershipRequest{Set: "rpi1", Action: "acquire", Requester: "alice"}); err != nil {
		t.Fatal(err)
	}
	bob := "Bearer " + e.Token(t, "bob")
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/reboots", `{"set":"rpi1","requester":"alice"}`},
		{"POST", "/ownership", `{"set":"rpi1","action":"release","requester":"alice"}`},
		{"POST", "/config", `{"set":"rpi1","settings":["kexec.allow=false"],"requester":"alice"}`},
		{"DELETE", "/devices/rpi1?requester=alice", ""},
		{"GET", "/reboots?set=rpi1&requester=alice", ""},
		{"GET", "/config?set=my-nodes&requester=alice", ""},
	} {
		status, body := send(t, e.URL, c.method, c.path, c.body, bob)
		if status != http.StatusForbidden || !strings.Contains(body, "requester 'alice' is not the user of this token (bob)") {
			t.Errorf("%s %s as bob: %d %s; want 403 naming the forged requester", c.method, c.path, status, body)
		}
	}
	d, err := e.Store.DeviceByName(t.Context(), "rpi1")
	if err != nil || d.Owner != "alice" {
		t.Fatalf("rpi1 after forged requests: %+v, %v; want still alice's", d, err)
	}
	if rs, _ := e.Store.Reboots(t.Context(), store.RebootFilter{}); len(rs) != 0 {
		t.Errorf("reboots recorded by forged requests: %+v", rs)
	}
	// Without a requester field, bob acts as bob: alice's node needs force,
	// and the forced reboot is recorded under bob.
	if status, body := send(t, e.URL, "POST", "/reboots", `{"set":"rpi1"}`, bob); status != http.StatusForbidden || !strings.Contains(body, "used by other users") {
		t.Errorf("reboot of alice's node by bob: %d %s; want 403 needing force", status, body)
	}
	if status, body := send(t, e.URL, "POST", "/reboots", `{"set":"rpi1","force":true}`, bob); status != http.StatusOK {
		t.Fatalf("forced reboot by bob: %d %s", status, body)
	}
	rs, _ := e.Store.Reboots(t.Context(), store.RebootFilter{})
	if len(rs) != 1 || rs[0].Requester != "bob" {
		t.Errorf("reboot records %+v, want one requested by bob", rs)
	}
}

func TestWhoAmI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	who, err := e.ClientAs(t, "carol").WhoAmI(t.Context())
	if err != nil || who != (api.WhoAmI{User: "carol"}) {
		t.Errorf("WhoAmI(carol) = %+v, %v", who, err)
	}
	if who, err := e.Client.WhoAmI(t.Context()); err != nil || !who.Admin || who.User != "admin" {
		t.Errorf("WhoAmI(admin) = %+v, %v", who, err)
	}
}

// Switch and device settings, adding and forgetting devices, links and
// rescans are for admins: a plain user is refused, nothing changes, and
// the answer says who may; an admin is served.
func TestAdminOnlyActions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.addNode(t, "free1", reboottest.OK)
	if _, err := e.c.AddDevice(t.Context(), api.AddDevice{Name: "sw1", IP: "192.168.152.2", Type: "switch"}); err != nil {
		t.Fatal(err)
	}
	bob := "Bearer " + e.Token(t, "bob")
	before, _ := e.Store.Devices(t.Context())
	settingsBefore, _ := e.Store.Settings(t.Context())
	for _, c := range []struct{ method, path, body, what string }{
		{"POST", "/devices", `{"name":"sw2","ip":"192.168.152.3","type":"switch"}`, "Adding a device"},
		{"DELETE", "/devices/free1", "", "Forgetting a device"},
		{"DELETE", "/devices/sw1?force=true", "", "Forgetting a device"},
		{"POST", "/config", `{"set":"sw1","settings":["poe.reboots=true"]}`, "Changing the settings of device sw1"},
		{"POST", "/config", `{"set":"free1,sw1","settings":["boot.timeout=90"],"force":true}`, "Changing the settings of device sw1"},
		{"PUT", "/links", `{"node":"free1","switch":"sw1","port":3}`, "Recording a link"},
		{"POST", "/rescans", `{}`, "A rescan (it records links and devices)"},
	} {
		status, body := send(t, e.URL, c.method, c.path, c.body, bob)
		if status != http.StatusForbidden || !strings.Contains(body, c.what+" is for admins, and bob is not one") || !strings.Contains(body, `"code":"forbidden"`) {
			t.Errorf("%s %s as bob: %d %s; want 403 forbidden saying %q is for admins", c.method, c.path, status, body, c.what)
		}
	}
	after, _ := e.Store.Devices(t.Context())
	settingsAfter, _ := e.Store.Settings(t.Context())
	links, _ := e.Store.Links(t.Context())
	if len(after) != len(before) || len(links) != 0 || len(settingsAfter) != len(settingsBefore) {
		t.Errorf("refused admin actions changed the store: devices %d -> %d, links %v, settings %v -> %v", len(before), len(after), links, settingsBefore, settingsAfter)
	}
	// Node settings of a free node stay open to every user.
	if status, body := send(t, e.URL, "POST", "/config", `{"set":"free1","settings":["boot.timeout=90"]}`, bob); status != http.StatusOK {
		t.Errorf("node settings of a free node as bob: %d %s", status, body)
	}
	admin := "Bearer " + e.AdminToken
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/config", `{"set":"sw1","settings":["snmp.version=2"]}`},
		{"PUT", "/links", `{"node":"free1","switch":"sw1","port":3}`},
		{"POST", "/devices", `{"name":"sw2","ip":"192.168.152.3","type":"switch"}`},
		{"DELETE", "/devices/sw2", ""},
	} {
		if status, body := send(t, e.URL, c.method, c.path, c.body, admin); status >= 300 {
			t.Errorf("%s %s as admin: %d %s", c.method, c.path, status, body)
		}
	}
}
