package server

import (
	"errors"
	"strings"
	"testing"

	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/vocab"
)

var testPC = store.Device{MAC: "52:54:00:00:00:09", Name: "pc1", Type: store.TypeNode}

// TestPowerConfig: the power settings are checked whole, on the
// configuration the node would have; the culprit is named.
func TestPowerConfig(t *testing.T) {
	t.Parallel()
	ipmiSet := map[string]string{"ipmi.host": "10.0.0.5", "ipmi.user": "admin", "ipmi.password": "pw"}
	cases := []struct {
		dev    store.Device
		stored map[string]string
		args   []string
		want   string // "" accepted
	}{
		{testPC, nil, []string{"power.method=ipmi"}, "cannot set 'power.method' to 'ipmi' unless 'ipmi.host' and 'ipmi.user' and 'ipmi.password' are defined too (device pc1)."},
		{testPC, nil, []string{"power.method=redfish", "redfish.url=https://bmc1", "redfish.user=root"}, "unless 'redfish.password' is defined too"},
		{testPC, nil, []string{"power.method=command"}, "unless 'power.command' is defined too"},
		{testPC, ipmiSet, []string{"power.method=IPMI"}, ""},
		{testPC, nil, []string{"power.method=ipmi", "ipmi.host=bmc-1.lab", "ipmi.user=admin", "ipmi.password=x"}, ""},
		{testPC, nil, []string{"power.method=none"}, ""},
		{testPC, nil, []string{"power.method=pdu"}, "only allows values 'poe', 'ipmi', 'redfish', 'command' or 'none'"},
		{testVNode, nil, []string{"power.method=command", "power.command=/bin/true"}, "node vn1 is virtual"},
		{testSwitch, nil, []string{"ipmi.host=10.0.0.5"}, "is not a node"},
		{testPC, nil, []string{"ipmi.host=-bad-.lab"}, "not a valid host name"},
		{testPC, nil, []string{"ipmi.host=224.0.0.1"}, "is multicast: not a device's address"},
		{testPC, nil, []string{"ipmi.host=169.254.169.254"}, "link-local"},
		{testPC, nil, []string{"redfish.url=http://169.254.169.254/redfish/v1"}, "link-local"},
		{testPC, nil, []string{"redfish.url=https://[fe80::1]"}, "link-local"},
		{testPC, nil, []string{"ipmi.host=127.0.0.1"}, ""},
		{testPC, nil, []string{"ipmi.user=" + strings.Repeat("u", 17)}, "1 to 16 characters"},
		{testPC, nil, []string{"ipmi.password=" + strings.Repeat("p", 21)}, "1 to 20 characters"},
		{testPC, nil, []string{"ipmi.password=tab\there"}, "printable ASCII"},
		{testPC, nil, []string{"ipmi.port=70000"}, "ipmi.port: must be between 1 and 65535 (got 70000)"},
		{testPC, nil, []string{"redfish.url=https://root:pw@bmc1"}, "must not hold credentials"},
		{testPC, nil, []string{"power.command=pdu on {name}"}, "absolute path"},
		{testPC, nil, []string{"power.command=/usr/bin/pdu {port}"}, "unknown placeholder"},
		{testPC, nil, []string{"power.timeout=1m"}, "power.timeout: must be between 1s and 30s (got 1m)"},
		{testPC, nil, []string{"power.off_time=abc"}, "'abc' is not a valid value for option 'power.off_time'"},
	}
	for _, c := range cases {
		_, err := planConfig([]store.Device{c.dev}, map[string]map[string]string{c.dev.MAC: c.stored}, c.args)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%v on %s: %v, want accepted", c.args, c.dev.Name, err)
		case c.want != "" && (err == nil || !errors.Is(err, vocab.ErrInvalid) || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%v on %s: %v, want refused with %q", c.args, c.dev.Name, err, c.want)
		}
	}
	// A password's value is never in the message refusing it.
	_, err := planConfig([]store.Device{testPC}, nil, []string{"ipmi.password=s3cr\x01t"})
	if err == nil || strings.Contains(err.Error(), "s3cr") {
		t.Errorf("refused password: %v, want an error without the value", err)
	}
	// Removing what the stored method needs is refused too.
	stored := map[string]map[string]string{testPC.MAC: {"power.method": "command", "power.command": "/bin/true"}}
	if _, err := planConfig([]store.Device{testPC}, stored, []string{"power.method=ipmi", "ipmi.host=10.0.0.1"}); err == nil {
		t.Error("switching to ipmi without its credentials accepted")
	}
}

// TestPowerSettingsShownOnceSet: a node without power settings shows none
// of them; once one is set, all of them, passwords masked.
func TestPowerSettingsShownOnceSet(t *testing.T) {
	t.Parallel()
	names := func(stored map[string]string) map[string]string {
		out := map[string]string{}
		for _, sv := range shownSettings(testPC, stored) {
			out[sv.name] = sv.value
		}
		return out
	}
	if got := names(nil); got["power.method"] != "" || got["ipmi.password"] != "" {
		t.Errorf("node without power settings shows %v", got)
	}
	got := names(map[string]string{"power.method": "ipmi", "ipmi.password": "pw", "ipmi.host": "h", "ipmi.user": "u"})
	if got["power.method"] != "ipmi" || got["ipmi.password"] != masked || got["redfish.password"] != Unspecified || got["power.off_time"] != "2s" {
		t.Errorf("node with power settings shows %v", got)
	}
}

// FuzzPowerSettings: a set of power settings planConfig accepts for a
// physical node gives a configuration whose method has all it needs, and
// each stored value parses back to itself.
func FuzzPowerSettings(f *testing.F) {
	f.Add("ipmi", "10.0.0.5", "admin", "pw", "https://bmc/redfish/v1/Systems/1", "/usr/bin/pdu {action} {name}", "2s")
	f.Add("redfish", "", "root", "calvin", "http://127.0.0.1:8000", "", "0")
	f.Add("command", "bmc.lab", "", "", "", `/bin/relay "port 3" {action}`, "30s")
	f.Add("none", "-x", "a\x00", "", "ftp://x", "relay", "1e9")
	f.Fuzz(func(t *testing.T, method, host, user, pw, rfURL, cmd, off string) {
		args := []string{"power.method=" + method}
		for k, v := range map[string]string{"ipmi.host": host, "ipmi.user": user, "ipmi.password": pw, "redfish.url": rfURL,
			"redfish.user": user, "redfish.password": pw, "power.command": cmd, "power.off_time": off} {
			if v != "" {
				args = append(args, k+"="+v)
			}
		}
		plan, err := planConfig([]store.Device{testPC}, nil, args)
		if err != nil {
			if !errors.Is(err, vocab.ErrInvalid) {
				t.Fatalf("planConfig(%q) = %v, not ErrInvalid", args, err)
			}
			if pw != "" && len(pw) > 3 && strings.Contains(err.Error(), pw) {
				t.Fatalf("refusal shows the password: %v", err)
			}
			return
		}
		merged := map[string]string{}
		for k, v := range plan.changes[0].Set {
			merged[k] = *v
			def, _ := lookupSetting(k)
			if again, err := def.parse(*v); err != nil || again != *v {
				t.Fatalf("%s stored %q, which parses as %q, %v", k, *v, again, err)
			}
		}
		for _, k := range powerNeeds[merged["power.method"]] {
			if merged[k] == "" {
				t.Fatalf("power.method=%s accepted without %s (%q)", merged["power.method"], k, args)
			}
		}
	})
}
