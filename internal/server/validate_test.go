package server_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/reboot/reboottest"
)

// devicesNow returns the inventory, failing the test on error.
func (e *env) devicesNow(t *testing.T) api.DeviceList {
	t.Helper()
	devs, err := e.c.Devices(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return devs
}

func (e *env) device(t *testing.T, name string) api.Device {
	t.Helper()
	for _, d := range e.devicesNow(t).Devices {
		if d.Name == name {
			return d
		}
	}
	t.Fatalf("no device %s", name)
	return api.Device{}
}

// wantInvalid checks err is ErrInvalid with a message containing every
// one of parts.
func wantInvalid(t *testing.T, what string, err error, parts ...string) {
	t.Helper()
	if !errors.Is(err, api.ErrInvalid) {
		t.Errorf("%s = %v, want ErrInvalid", what, err)
		return
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("%s = %q, want it to name %q", what, err, p)
		}
	}
}

// A report never retypes a switch, never changes a virtual flag and never
// renames a node; it may make a device of unknown type a node.
func TestReportCannotChangeWhatADeviceIs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	if _, err := e.c.AddDevice(t.Context(), api.AddDevice{Name: "sw1", IP: "192.168.152.2", MAC: "52:54:00:00:5e:01", Type: "switch"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.AddDevice(t.Context(), api.AddDevice{Name: "thing", IP: "192.168.152.3", MAC: "52:54:00:00:5e:02"}); err != nil {
		t.Fatal(err)
	}
	vm := api.NodeReport{MAC: "52:54:00:00:5e:03", IP: "127.20.251.3", Name: "vm1", Model: "pc", Virtual: true}
	if _, err := e.c.ReportNode(t.Context(), vm); err != nil {
		t.Fatal(err)
	}
	real := api.NodeReport{MAC: "52:54:00:00:5e:04", IP: "127.20.251.4", Name: "rpi1", Model: "rpi-b"}
	if _, err := e.c.ReportNode(t.Context(), real); err != nil {
		t.Fatal(err)
	}
	before := e.devicesNow(t)

	refused := []struct {
		name string
		rep  api.NodeReport
		want []string
	}{
		{"switch MAC", api.NodeReport{MAC: "52:54:00:00:5e:01", IP: "127.20.251.9", Name: "evil"}, []string{"sw1", "switch"}},
		{"vnode as real", api.NodeReport{MAC: vm.MAC, IP: vm.IP, Name: "vm1", Model: "pc"}, []string{"virtual", "vm1"}},
		{"real as vnode", api.NodeReport{MAC: real.MAC, IP: real.IP, Name: "rpi1", Virtual: true}, []string{"virtual", "rpi1"}},
	}
	for _, c := range refused {
		_, err := e.c.ReportNode(t.Context(), c.rep)
		wantInvalid(t, "ReportNode("+c.name+")", err, c.want...)
	}
	if diff := cmp.Diff(before, e.devicesNow(t)); diff != "" {
		t.Errorf("refused reports changed the inventory (-before +after):\n%s", diff)
	}

	// Accepted: an unknown device registers as a node under the reported
	// name; a known node keeps its name and gets its new IP and model.
	if _, err := e.c.ReportNode(t.Context(), api.NodeReport{MAC: "52:54:00:00:5e:02", IP: "127.20.251.2", Name: "renamed", Model: "rpi-4"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.ReportNode(t.Context(), api.NodeReport{MAC: real.MAC, IP: "127.20.251.5", Name: "other", Model: "rpi-3"}); err != nil {
		t.Fatal(err)
	}
	type short struct{ Type, IP, Model string }
	got := map[string]short{}
	for _, d := range e.devicesNow(t).Devices {
		got[d.Name] = short{d.Type, d.IP, d.Model}
	}
	want := map[string]short{
		"sw1":     {"switch", "192.168.152.2", ""},
		"renamed": {"node", "127.20.251.2", "rpi-4"},
		"vm1":     {"node", "127.20.251.3", "pc"},
		"rpi1":    {"node", "127.20.251.5", "rpi-3"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("devices after accepted reports (-want +got):\n%s", diff)
	}
}

// Addresses no device can have are refused in reports, heartbeats and
// walt device add, naming the field; loopback stays accepted.
func TestReportAddresses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, ip := range []string{"0.0.0.0", "0.1.2.3", "169.254.169.254", "255.255.255.255", "240.0.0.1", "224.0.0.1", "::", "fe80::1", "ff02::1", "fe80::1%lo", "::ffff:169.254.1.1"} {
		_, err := e.c.ReportNode(t.Context(), api.NodeReport{MAC: "52:54:00:00:5f:01", IP: ip, Name: "n1"})
		wantInvalid(t, "ReportNode(ip "+ip+")", err, "ip")
		_, err = e.c.AddDevice(t.Context(), api.AddDevice{Name: "d1", IP: ip, MAC: "52:54:00:00:5f:02"})
		wantInvalid(t, "AddDevice(ip "+ip+")", err, "ip")
	}
	for _, mac := range []string{"00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:01", "33:33:00:00:00:01"} {
		_, err := e.c.ReportNode(t.Context(), api.NodeReport{MAC: mac, IP: "127.20.252.1", Name: "n1"})
		wantInvalid(t, "ReportNode(mac "+mac+")", err, "mac")
		_, err = e.c.AddDevice(t.Context(), api.AddDevice{Name: "d1", IP: "192.168.152.9", MAC: mac})
		wantInvalid(t, "AddDevice(mac "+mac+")", err, "mac")
		_, err = e.c.Heartbeats(t.Context(), api.Heartbeats{Beats: []api.Heartbeat{{MAC: "52:54:00:00:5f:01", BootID: "b"}, {MAC: mac, BootID: "b"}}})
		wantInvalid(t, "Heartbeats(mac "+mac+")", err, "beats[1].mac")
	}
	if n := e.devicesNow(t).NumDevices; n != 0 {
		t.Errorf("after refused reports and adds, %d devices, want 0", n)
	}
	for i, ip := range []string{"127.20.252.2", "::1", "10.0.2.15", "192.168.152.20"} {
		mac := []string{"52:54:00:00:5f:0a", "52:54:00:00:5f:0b", "02:54:00:00:5f:0c", "52:54:00:00:5f:0d"}[i]
		if _, err := e.c.ReportNode(t.Context(), api.NodeReport{MAC: mac, IP: ip}); err != nil {
			t.Errorf("ReportNode(ip %s) = %v, want accepted", ip, err)
		}
	}
}

// Free-text fields are bounded, and printable where they are shown.
func TestTextBounds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.addNode(t, "n1", reboottest.OK)
	long := func(n int) string { return strings.Repeat("x", n) }
	rep := func(mod func(*api.NodeReport)) error {
		r := api.NodeReport{MAC: "52:54:00:00:60:01", IP: "127.20.253.1", Name: "b1", Model: "rpi-b", BootID: "id"}
		mod(&r)
		_, err := e.c.ReportNode(t.Context(), r)
		return err
	}
	wantInvalid(t, "ReportNode(model 129 bytes)", rep(func(r *api.NodeReport) { r.Model = long(129) }), "model", "129 bytes", "at most 128")
	wantInvalid(t, "ReportNode(model 512 KiB)", rep(func(r *api.NodeReport) { r.Model = long(512 << 10) }), "model", "at most 128")
	wantInvalid(t, "ReportNode(model with escape)", rep(func(r *api.NodeReport) { r.Model = "rpi\x1b[2J" }), "model", "printable")
	wantInvalid(t, "ReportNode(model not UTF-8)", rep(func(r *api.NodeReport) { r.Model = "rpi\xff" }), "model", "printable")
	wantInvalid(t, "ReportNode(boot_id 129 bytes)", rep(func(r *api.NodeReport) { r.BootID = long(129) }), "boot_id", "at most 128")
	wantInvalid(t, "ReportNode(name 65 bytes)", rep(func(r *api.NodeReport) { r.Name = long(65) }), "name", "at most 64")
	if err := rep(func(r *api.NodeReport) { r.Model = "Raspberry Pi 4 Modèle B" }); err != nil {
		t.Errorf("ReportNode(UTF-8 model) = %v, want accepted", err)
	}
	_, err := e.c.Heartbeats(t.Context(), api.Heartbeats{Beats: []api.Heartbeat{{MAC: "52:54:00:00:60:01", BootID: long(129)}}})
	wantInvalid(t, "Heartbeats(boot_id 129 bytes)", err, "beats[0].boot_id", "at most 128")

	reboot := func(req api.RebootRequest) error {
		_, err := e.c.Reboot(t.Context(), req, nil)
		return err
	}
	wantInvalid(t, "Reboot(cause 257 bytes)", reboot(api.RebootRequest{Set: "n1", Requester: "alice", Cause: long(257)}), "cause", "at most 256")
	wantInvalid(t, "Reboot(cause with newline)", reboot(api.RebootRequest{Set: "n1", Requester: "alice", Cause: "a\nb"}), "cause", "printable")
	wantInvalid(t, "Reboot(requester 65 bytes)", reboot(api.RebootRequest{Set: "n1", Requester: long(65)}), "requester", "at most 64")
	wantInvalid(t, "Reboot(set 512 KiB + 1)", reboot(api.RebootRequest{Set: long(512<<10 + 1), Requester: "alice"}), "set", "at most 524288")
	many := make([]string, 65)
	for i := range many {
		many[i] = "kexec.allow=true"
	}
	_, err = e.c.SetConfig(t.Context(), api.ConfigRequest{Set: "n1", Requester: "alice", Settings: many})
	wantInvalid(t, "SetConfig(65 settings)", err, "settings", "at most 64")
	_, err = e.c.SetConfig(t.Context(), api.ConfigRequest{Set: "n1", Requester: "alice", Settings: []string{"kexec.allow=" + long(1024)}})
	wantInvalid(t, "SetConfig(setting of 1036 bytes)", err, "settings[0]", "at most 1024")
	recs, err := e.c.Reboots(t.Context(), "n1", 0)
	if err != nil || len(recs.Reboots) != 0 {
		t.Errorf("after refused reboots, history %v, %v; want empty", recs.Reboots, err)
	}
}

// One name rule for walt device add, node reports and walt node create.
func TestDeviceNames(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, name := range []string{".", "..", ".hidden", "_x", "-x", "all-nodes", "my-nodes", "free-nodes", "all-devices", "server", "a/b", "a,b", "n[1-2]", strings.Repeat("n", 65)} {
		want := name
		if len(name) > 64 {
			want = "name: 65 bytes, at most 64"
		}
		_, err := e.c.AddDevice(t.Context(), api.AddDevice{Name: name, IP: "192.168.152.30"})
		wantInvalid(t, "AddDevice(name "+name+")", err, want)
		_, err = e.c.ReportNode(t.Context(), api.NodeReport{MAC: "52:54:00:00:61:01", IP: "127.20.254.1", Name: name})
		wantInvalid(t, "ReportNode(name "+name+")", err, want)
	}
	if n := e.devicesNow(t).NumDevices; n != 0 {
		t.Errorf("after refused names, %d devices, want 0", n)
	}
	for i, name := range []string{"rpi-1", "Node_2", "a.b", "9"} {
		if _, err := e.c.AddDevice(t.Context(), api.AddDevice{Name: name, IP: "192.168.152.31", MAC: fmt.Sprintf("52:54:00:00:61:%02x", 16+i)}); err != nil {
			t.Errorf("AddDevice(name %s) = %v, want accepted", name, err)
		}
	}
}

// raw sends a request as-is and returns the status and the error body.
func (e *env) raw(t *testing.T, method, path, body string) (int, api.Error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, e.URL+api.Prefix+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var eb api.ErrorBody
	if resp.StatusCode >= 300 {
		if err := json.Unmarshal(b, &eb); err != nil || eb.Error == nil {
			t.Fatalf("%s %s: status %s, body %q: not an error body", method, path, resp.Status, b)
		}
		return resp.StatusCode, *eb.Error
	}
	return resp.StatusCode, api.Error{}
}

// Every JSON endpoint refuses trailing data and query parameters; every
// other endpoint refuses query parameters it does not know.
func TestRequestValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.addNode(t, "n1", reboottest.OK)
	if _, err := e.c.AddDevice(t.Context(), api.AddDevice{Name: "sw1", IP: "192.168.152.2", Type: "switch"}); err != nil {
		t.Fatal(err)
	}
	trailing := []struct{ method, path, body string }{
		{"POST", "/devices", `{"name":"d1","ip":"192.168.152.40"} {"name":"d2","ip":"192.168.152.41"}`},
		{"POST", "/node-reports", `{"mac":"52:54:00:00:62:01","ip":"127.20.255.1"}x`},
		{"POST", "/config", `{"set":"n1","settings":["kexec.allow=false"],"requester":"alice"}[]`},
		{"POST", "/ownership", `{"set":"n1","action":"acquire","requester":"alice"}{}`},
		{"POST", "/heartbeats", `{"beats":[]}0`},
		{"POST", "/reboots", `{"set":"n1","requester":"alice"}{"set":"n1"}`},
		{"POST", "/waits", `{"set":"n1","requester":"alice","timeout":"1s"} "x"`},
		{"PUT", "/links", `{"node":"n1","switch":"sw1","port":1}}`},
		{"POST", "/rescans", `{"requester":"alice"}{`},
		{"POST", "/vnodes", `{"name":"v1","requester":"alice"}null`},
	}
	for _, c := range trailing {
		status, ae := e.raw(t, c.method, c.path, c.body)
		if status != http.StatusBadRequest || ae.Code != api.CodeInvalid || !strings.Contains(ae.Message, "trailing data after the JSON body") {
			t.Errorf("%s %s with trailing data: %d %+v, want 400 naming the trailing data", c.method, c.path, status, ae)
		}
	}
	unknown := []struct{ method, path, body string }{
		{"GET", "/devices?colour=red", ""},
		{"GET", "/config?set=n1&colour=red", ""},
		{"GET", "/reboots?node=n1&colour=red", ""},
		{"GET", "/topology?colour=red", ""},
		{"GET", "/switches/sw1/ports?colour=red", ""},
		{"GET", "/vnodes?colour=red", ""},
		{"GET", "/vnodes/n1/console?colour=red", ""},
		{"DELETE", "/devices/sw1?colour=red", ""},
		{"DELETE", "/vnodes/n1?colour=red", ""},
		{"POST", "/node-reports?colour=red", `{"mac":"52:54:00:00:62:02","ip":"127.20.255.2"}`},
		{"POST", "/reboots?colour=red", `{"set":"n1","requester":"alice"}`},
	}
	for _, c := range unknown {
		status, ae := e.raw(t, c.method, c.path, c.body)
		if status != http.StatusBadRequest || !strings.Contains(ae.Message, "unknown query parameter 'colour'") || !cmp.Equal(ae.Culprits, []string{"colour"}) {
			t.Errorf("%s %s: %d %+v, want 400 naming 'colour'", c.method, c.path, status, ae)
		}
	}
	if status, ae := e.raw(t, "GET", "/devices?%zz", ""); status != http.StatusBadRequest || !strings.Contains(ae.Message, "query of GET /api/v1/devices") {
		t.Errorf("GET /devices with a malformed query: %d %+v, want 400", status, ae)
	}
	if status, ae := e.raw(t, "GET", "/config?set=n1&set=sw1", ""); status != http.StatusBadRequest || !strings.Contains(ae.Message, "'set' given 2 times") {
		t.Errorf("GET /config with set twice: %d %+v, want 400", status, ae)
	}
	if status, ae := e.raw(t, "GET", "/config?set=n1&nodes_only=maybe", ""); status != http.StatusBadRequest || !strings.Contains(ae.Message, "nodes_only") {
		t.Errorf("GET /config?nodes_only=maybe: %d %+v, want 400", status, ae)
	}
	// Nothing of the refused requests took effect.
	if got := e.device(t, "n1"); got.Owner != "" || got.Config["kexec.allow"] != "true" {
		t.Errorf("n1 after refused requests: owner %q, kexec.allow %q; want free, true", got.Owner, got.Config["kexec.allow"])
	}
	if n := e.devicesNow(t).NumDevices; n != 2 {
		t.Errorf("%d devices after refused requests, want 2", n)
	}
	if recs, _ := e.c.Reboots(t.Context(), "n1", 0); len(recs.Reboots) != 0 {
		t.Errorf("refused reboots recorded: %+v", recs.Reboots)
	}
}

// walt node config and walt device forget of another user's node need
// force, as a reboot does; forgetting a device needs an admin.
func TestChangesNeedOwnership(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.addNode(t, "a1", reboottest.OK)
	e.addNode(t, "free1", reboottest.OK)
	if _, err := e.c.Ownership(t.Context(), api.OwnershipRequest{Set: "a1", Action: "acquire", Requester: "alice"}); err != nil {
		t.Fatal(err)
	}
	set := api.ConfigRequest{Set: "a1,free1", Settings: []string{"kexec.allow=false"}, NodesOnly: true, Requester: "bob"}
	_, err := e.c.SetConfig(t.Context(), set)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeNotOwned || !cmp.Equal(ae.Culprits, []string{"a1"}) {
		t.Errorf("SetConfig(alice's node as bob) = %v, want ErrNotOwned naming a1", err)
	}
	if got := e.device(t, "free1").Config["kexec.allow"]; got != "true" {
		t.Errorf("refused config changed free1: kexec.allow=%s", got)
	}
	set.Force = true
	if _, err := e.c.SetConfig(t.Context(), set); err != nil {
		t.Errorf("SetConfig(force) = %v", err)
	}
	if _, err := e.c.SetConfig(t.Context(), api.ConfigRequest{Set: "a1", Settings: []string{"kexec.allow=true"}, Requester: "alice"}); err != nil {
		t.Errorf("SetConfig(own node) = %v", err)
	}
	if _, err := e.c.Config(t.Context(), "a1", "bob", true); err != nil {
		t.Errorf("Config(show alice's node as bob) = %v, want allowed", err)
	}

	for _, force := range []bool{false, true} {
		if err := e.c.ForgetDevice(t.Context(), "free1", "bob", force); !errors.Is(err, api.ErrForbidden) || !strings.Contains(err.Error(), "for admins, and bob is not one") {
			t.Errorf("ForgetDevice(as bob, not an admin, force %t) = %v, want forbidden", force, err)
		}
	}
	err = e.c.ForgetDevice(t.Context(), "a1", "admin", false)
	if !errors.As(err, &ae) || ae.Code != api.CodeNotOwned || !cmp.Equal(ae.Culprits, []string{"a1"}) {
		t.Errorf("ForgetDevice(alice's node as another admin) = %v, want ErrNotOwned naming a1", err)
	}
	e.device(t, "a1") // still there
	if err := e.c.ForgetDevice(t.Context(), "free1", "admin", false); err != nil {
		t.Errorf("ForgetDevice(free node) = %v", err)
	}
	if err := e.c.ForgetDevice(t.Context(), "a1", "admin", true); err != nil {
		t.Errorf("ForgetDevice(force) = %v", err)
	}
	if n := e.devicesNow(t).NumDevices; n != 0 {
		t.Errorf("%d devices left, want 0", n)
	}

	// A virtual node is removed with its machine by walt node remove.
	if _, err := e.c.ReportNode(t.Context(), api.NodeReport{MAC: "52:54:00:00:63:01", IP: "127.20.255.30", Name: "vm1", Virtual: true}); err != nil {
		t.Fatal(err)
	}
	wantInvalid(t, "ForgetDevice(vnode)", e.c.ForgetDevice(t.Context(), "vm1", "alice", true), "walt node remove vm1")
	e.device(t, "vm1")
}
