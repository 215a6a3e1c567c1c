package bmcreboot_test

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/power/ipmi/ipmisim"
	"github.com/walt-testbed/walt/internal/power/redfish/redfishsim"
	"github.com/walt-testbed/walt/internal/reboot"
	"github.com/walt-testbed/walt/internal/reboot/bmcreboot"
	"github.com/walt-testbed/walt/internal/reboot/reboottest"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/store/sqlite"
	"github.com/walt-testbed/walt/internal/testutil"
)

var addrs = reboottest.NewAddrs(64)

// rig is a store with physical nodes whose agents refuse to reboot, and
// an engine with the power methods.
type rig struct {
	st    store.Store
	eng   *reboot.Engine
	logs  *testutil.Buffer
	nodes []reboot.Node
}

func newRig(t testing.TB) *rig {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "walt.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r := &rig{st: st, logs: &testutil.Buffer{}}
	log := slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	methods, err := bmcreboot.New(st, bmcreboot.Drivers{}, log)
	if err != nil {
		t.Fatal(err)
	}
	cfg := reboot.DefaultConfig()
	cfg.Methods, cfg.Logger, cfg.HardTimeout = methods, log, 30*time.Second
	if r.eng, err = reboot.New(cfg); err != nil {
		t.Fatal(err)
	}
	return r
}

// add registers a node whose agent declines REBOOT, with settings.
func (r *rig) add(t testing.TB, name string, settings map[string]string) {
	t.Helper()
	a := addrs.StartT(t, reboottest.KO)
	mac := fmt.Sprintf("02:64:00:00:00:%02x", len(r.nodes))
	ip, _, _ := strings.Cut(a.Addr, ":")
	if err := r.st.AddDevice(t.Context(), store.Device{MAC: mac, Name: name, IP: ip, Type: store.TypeNode}); err != nil {
		t.Fatal(err)
	}
	set := map[string]*string{}
	for k, v := range settings {
		set[k] = &v
	}
	if err := r.st.ApplyChanges(t.Context(), []store.DeviceChange{{MAC: mac, Set: set}}); err != nil {
		t.Fatal(err)
	}
	r.nodes = append(r.nodes, reboot.Node{Name: name, MAC: mac, Addr: a.Addr, Power: settings["power.method"]})
}

func recordScript(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("../../power/command/testdata/record.sh")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestHardRebootThroughPowerMethods: nodes whose agent refuses are
// hard-rebooted at once through their power.method: IPMI (ipmi_sim over
// RMCP+), Redfish (the simulated BMC) and a command; the results name the
// method, say whether the cut was read back, and the BMCs and the command
// saw an off then an on. A node with power.method=none gets no-method.
func TestHardRebootThroughPowerMethods(t *testing.T) {
	t.Parallel()
	bmc := ipmisim.Start(t, "127.65.0.1")
	rf := redfishsim.Start(t, "127.65.1.1")
	calls := filepath.Join(t.TempDir(), "calls")
	r := newRig(t)
	r.add(t, "pc-ipmi", map[string]string{"power.method": "ipmi", "ipmi.host": bmc.Host, "ipmi.port": strconv.Itoa(bmc.Port),
		"ipmi.user": ipmisim.User, "ipmi.password": ipmisim.Password, "power.off_time": "200ms"})
	r.add(t, "pc-redfish", map[string]string{"power.method": "redfish", "redfish.url": rf.URL + redfishsim.SystemPath,
		"redfish.user": redfishsim.User, "redfish.password": redfishsim.Password, "power.off_time": "200ms"})
	// The command's node also has a BMC password, which must not reach
	// the command.
	r.add(t, "pc-cmd", map[string]string{"power.method": "command", "power.off_time": "0s", "ipmi.password": ipmisim.Password,
		"power.command": recordScript(t) + " " + calls + " {action} {name} {mac} {ip}"})
	r.add(t, "pc-none", map[string]string{"power.method": "none"})

	res := r.eng.Reboot(t.Context(), r.nodes, false, nil)
	want := []struct {
		method   string
		verified bool
	}{{api.MethodIPMI, true}, {api.MethodRedfish, true}, {api.MethodCommand, false}}
	for i, w := range want {
		got := res[i]
		if !got.OK || got.Method != w.method || len(got.Attempts) != 2 || got.Attempts[0].Method != reboot.MethodSoft {
			t.Fatalf("%s: result %+v, want soft refused then %s", r.nodes[i].Name, got, w.method)
		}
		cut := got.Attempts[1].Cut
		if cut == nil || cut.Verified != w.verified || cut.Detail == "" {
			t.Errorf("%s: cut %+v, want verified=%t with a detail", r.nodes[i].Name, cut, w.verified)
		}
	}
	if ev := bmc.Events(); len(ev) != 2 || ev[0].On || !ev[1].On {
		t.Errorf("IPMI BMC events %+v, want off then on", ev)
	}
	if ev := rf.Events(); len(ev) != 2 || ev[0].ResetType != "ForceOff" || ev[1].ResetType != "On" {
		t.Errorf("Redfish resets %+v, want ForceOff then On", ev)
	}
	b, err := os.ReadFile(calls)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	ip, _, _ := strings.Cut(r.nodes[2].Addr, ":")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], "<off> <pc-cmd> <"+r.nodes[2].MAC+"> <"+ip+">") || !strings.Contains(lines[1], "<on>") {
		t.Errorf("command calls:\n%s\nwant off then on with the node's name, MAC and IP", b)
	}
	none := res[3]
	if none.OK || reboot.ErrorCode(none.Err()) != "no-method" || !strings.Contains(none.Err().Error(), "power.method of pc-none is none") {
		t.Errorf("pc-none: %+v, want no-method naming power.method", none)
	}
	for what, text := range map[string]string{"log": r.logs.String(), "command arguments": string(b)} {
		for _, pw := range []string{ipmisim.Password, redfishsim.Password} {
			if strings.Contains(text, pw) {
				t.Errorf("%s shows a BMC password:\n%s", what, text)
			}
		}
	}
}

// TestMissingSettings: a node whose power.method lacks its settings (set
// by hand in the store, past the server's checks) fails with no-method,
// naming what is missing, without touching anything.
func TestMissingSettings(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.add(t, "pc1", map[string]string{"power.method": "ipmi", "ipmi.host": "127.65.0.250"})
	res := r.eng.Reboot(t.Context(), r.nodes, true, nil)
	if res[0].OK || reboot.ErrorCode(res[0].Err()) != "no-method" || !strings.Contains(res[0].Err().Error(), "ipmi.user") {
		t.Fatalf("result %+v, want no-method naming ipmi.user", res[0])
	}
}
