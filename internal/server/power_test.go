package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/power/ipmi/ipmisim"
	"github.com/walt-testbed/walt/internal/power/redfish/redfishsim"
	"github.com/walt-testbed/walt/internal/reboot/reboottest"
	"github.com/walt-testbed/walt/internal/server"
	"github.com/walt-testbed/walt/internal/server/servertest"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/testutil"
)

// TestPowerMethodsThroughServer: through the API, power settings are
// checked whole (a method without its settings changes nothing), the
// passwords are masked; a reboot of nodes whose agent refuses goes
// through IPMI and Redfish, the stream names the method and says the cut
// was read back, the history keeps the method; a wrong password fails
// naming the BMC. No password is in any API reply or in the server log.
func TestPowerMethodsThroughServer(t *testing.T) {
	t.Parallel()
	bmc := ipmisim.Start(t, "127.66.0.1")
	rf := redfishsim.Start(t, "127.66.1.1")
	logs := &testutil.Buffer{}
	e := newEnv(t, func(c *server.Config) {
		c.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(t.Output(), logs), &slog.HandlerOptions{Level: slog.LevelDebug}))
		servertest.WithPoE(t)(c)
	})
	e.addNode(t, "pc1", reboottest.KO)
	e.addNode(t, "pc2", reboottest.KO)
	e.addNode(t, "pc3", reboottest.KO)
	var replies []any
	ctx := t.Context()

	// Half a configuration is refused whole.
	_, err := e.c.SetConfig(ctx, api.ConfigRequest{Set: "pc1", Settings: []string{"power.method=ipmi", "ipmi.host=" + bmc.Host}})
	if err == nil || !strings.Contains(err.Error(), "'ipmi.user' and 'ipmi.password' are defined too (device pc1)") {
		t.Fatalf("half an IPMI configuration: %v, want refused naming ipmi.user and ipmi.password", err)
	}
	if all, err := e.store.Settings(ctx); err != nil || len(all) != 0 && len(all[e.mac(t, "pc1")]) != 0 {
		t.Fatalf("settings after a refused change: %v, %v", all, err)
	}
	for _, c := range []api.ConfigRequest{
		{Set: "pc1", Settings: []string{"power.method=ipmi", "ipmi.host=" + bmc.Host, "ipmi.port=" + strconv.Itoa(bmc.Port),
			"ipmi.user=" + ipmisim.User, "ipmi.password=" + ipmisim.Password, "power.off_time=100ms"}},
		{Set: "pc2", Settings: []string{"power.method=redfish", "redfish.url=" + rf.URL, "redfish.user=" + redfishsim.User,
			"redfish.password=" + redfishsim.Password, "power.off_time=0"}},
		{Set: "pc3", Settings: []string{"power.method=ipmi", "ipmi.host=" + bmc.Host, "ipmi.port=" + strconv.Itoa(bmc.Port),
			"ipmi.user=" + ipmisim.User, "ipmi.password=Wr0ng-Pa55"}},
	} {
		res, err := e.c.SetConfig(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		replies = append(replies, res)
	}
	shown, err := e.c.Config(ctx, "pc1,pc2", "", true)
	if err != nil {
		t.Fatal(err)
	}
	replies = append(replies, shown)
	masked := map[string]bool{}
	for _, d := range shown.Devices {
		for _, s := range d.Settings {
			if strings.HasSuffix(s.Name, ".password") && s.Value != server.Unspecified {
				masked[d.Name+" "+s.Name] = s.Value == "********"
			}
		}
	}
	if len(masked) != 2 || !masked["pc1 ipmi.password"] || !masked["pc2 redfish.password"] {
		t.Errorf("passwords shown: %v, want pc1's and pc2's masked", masked)
	}

	res, err := e.c.Reboot(ctx, api.RebootRequest{Set: "pc1,pc2,pc3", Requester: "alice"}, func(ev api.RebootEvent) { replies = append(replies, ev) })
	if err != nil {
		t.Fatal(err)
	}
	by := resultsByNode(res)
	for name, method := range map[string]string{"pc1": api.MethodIPMI, "pc2": api.MethodRedfish} {
		r := by[name]
		if !r.OK || r.Method != method || len(r.Attempts) != 2 {
			t.Fatalf("%s: %+v, want rebooted by %s after the refused soft reboot", name, r, method)
		}
		if a := r.Attempts[1]; a.CutVerified == nil || !*a.CutVerified || a.Cut == "" {
			t.Errorf("%s: hard attempt %+v, want the cut verified", name, a)
		}
	}
	bad := by["pc3"]
	if bad.OK || len(bad.Attempts) != 2 || bad.Attempts[1].Method != api.MethodIPMI || bad.Attempts[1].Code != "denied" ||
		!strings.Contains(bad.Attempts[1].Error, "BMC "+bmc.Host) {
		t.Errorf("pc3 (wrong password): %+v, want an IPMI-reboot denied by the BMC, named", bad)
	}
	hist, err := e.c.Reboots(ctx, "pc1", 1)
	if err != nil {
		t.Fatal(err)
	}
	replies = append(replies, hist)
	if len(hist.Reboots) != 1 || hist.Reboots[0].Method != api.MethodIPMI {
		t.Fatalf("history of pc1: %+v, want its IPMI-reboot", hist.Reboots)
	}
	// The history keeps what the BMC said of the cut.
	if a := hist.Reboots[0].Attempts; len(a) != 2 || a[0].CutVerified != nil || a[1].CutVerified == nil || !*a[1].CutVerified ||
		a[1].Cut != by["pc1"].Attempts[1].Cut {
		t.Errorf("history of pc1: attempts %+v, want the soft one without a cut, the IPMI one with its verified cut", a)
	}
	out, _ := json.Marshal(replies)
	for what, text := range map[string]string{"API replies": string(out), "server log": logs.String()} {
		for _, pw := range []string{ipmisim.Password, redfishsim.Password, "Wr0ng-Pa55"} {
			if strings.Contains(text, pw) {
				t.Errorf("%s show a BMC password (%q)", what, pw)
			}
		}
	}
}

func (e *env) mac(t *testing.T, name string) string {
	t.Helper()
	d, err := e.store.Devices(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range d {
		if x.Name == name {
			return x.MAC
		}
	}
	t.Fatalf("no device %s", name)
	return ""
}

// TestNodePowerRecordedOff: a node whose own power the journal records
// off (a server killed during its power-cycle, store.NodePowerPort) is
// rebooted by powering it on only: no soft attempt (its agent cannot
// answer), its power.command run with "on" alone; the record is then gone.
func TestNodePowerRecordedOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t, servertest.WithPoE(t))
	e.addNode(t, "pc1", reboottest.OK)
	ctx := t.Context()
	calls := filepath.Join(t.TempDir(), "calls")
	script, err := filepath.Abs("../power/command/testdata/record.sh")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.SetConfig(ctx, api.ConfigRequest{Set: "pc1", Settings: []string{"power.method=command", "power.off_time=0",
		"power.command=" + script + " " + calls + " {action}"}}); err != nil {
		t.Fatal(err)
	}
	mac := e.mac(t, "pc1")
	if err := e.store.AddPoEOff(ctx, store.PoEOff{SwitchMAC: mac, Port: store.NodePowerPort, Reason: "hard-reboot"}); err != nil {
		t.Fatal(err)
	}
	res, err := e.c.Reboot(ctx, api.RebootRequest{Set: "pc1", Requester: "alice"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || !res[0].OK || res[0].Method != api.MethodCommand || len(res[0].Attempts) != 1 {
		t.Fatalf("reboot of pc1 recorded off = %+v, want one command-reboot attempt, no soft one", res)
	}
	b, _ := os.ReadFile(calls)
	if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); len(lines) != 1 || !strings.HasSuffix(lines[0], " <on>") {
		t.Errorf("power command calls:\n%s\nwant one, on", b)
	}
	if offs, err := e.store.PoEOffs(ctx); err != nil || len(offs) != 0 {
		t.Errorf("power-off records after the power-on: %+v, %v; want none", offs, err)
	}
}

// TestModelSet: model:NAME in a set names the nodes of that model, so
// that a model's minimum off time is one command; a model no node has
// matches nothing.
func TestModelSet(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := t.Context()
	for i, n := range []struct{ name, model string }{{"rpi1", "rpi-b"}, {"rpi2", "rpi-b"}, {"pc1", "pc-x86-64"}} {
		if _, err := e.c.ReportNode(ctx, api.NodeReport{MAC: fmt.Sprintf("02:66:00:00:01:%02x", i+1), IP: fmt.Sprintf("127.66.3.%d", i+1),
			Name: n.name, Model: n.model}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.c.SetConfig(ctx, api.ConfigRequest{Set: "model:rpi-b", Settings: []string{"power.off_time=5s"}}); err != nil {
		t.Fatal(err)
	}
	all, err := e.store.Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"rpi1": "5s", "rpi2": "5s", "pc1": ""} {
		if got := all[e.mac(t, name)]["power.off_time"]; got != want {
			t.Errorf("%s: power.off_time %q, want %q", name, got, want)
		}
	}
	if _, err := e.c.SetConfig(ctx, api.ConfigRequest{Set: "model:rpi-4b", Settings: []string{"power.off_time=5s"}}); err == nil ||
		!strings.Contains(err.Error(), "No matching devices found") {
		t.Errorf("config of a model no node has: %v, want no matching devices", err)
	}
}
