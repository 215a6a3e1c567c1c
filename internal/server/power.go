package server

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/bound"
	"github.com/walt-testbed/walt/internal/power/command"
	"github.com/walt-testbed/walt/internal/power/redfish"
	"github.com/walt-testbed/walt/internal/reboot"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/vocab"
)

//lint:file-ignore ST1005 the settings' errors are user-facing messages in WalT's style

// The settings of a node's power (docs/power.md), rows of settingDefs.
var powerSettingDefs = []settingDef{
	{name: vocab.PowerMethod, cat: catNode, def: vocab.PowerPoE, parse: powerMethod},
	{name: vocab.PowerCommand, cat: catNode, parse: powerCommand},
	{name: vocab.PowerTimeout, cat: catNode, def: "10s", parse: durationSetting(vocab.PowerTimeoutRange, "'10s' (the most a power command may run)")},
	{name: vocab.PowerOffTime, cat: catNode, def: "2s", parse: durationSetting(vocab.PowerOffTimeRange, "'5s' (the least time the power stays off in a power-cycle)")},
	{name: vocab.IPMIHost, cat: catNode, parse: bmcHost},
	{name: vocab.IPMIPort, cat: catNode, def: "623", parse: intSetting(vocab.IPMIPortRange, "        Use a UDP port number, 1 to 65535 (623 for most BMCs).", nil)},
	{name: vocab.IPMIUser, cat: catNode, parse: credential(vocab.IPMIUser, 16)},
	{name: vocab.IPMIPassword, cat: catNode, secret: true, parse: credential(vocab.IPMIPassword, 20)},
	{name: vocab.RedfishURL, cat: catNode, parse: redfishURL},
	{name: vocab.RedfishUser, cat: catNode, parse: credential(vocab.RedfishUser, 64)},
	{name: vocab.RedfishPassword, cat: catNode, secret: true, parse: credential(vocab.RedfishPassword, 128)},
	{name: vocab.RedfishInsecure, cat: catNode, def: "false", parse: boolSetting(vocab.RedfishInsecure)},
}

// The power settings join the others at start: settings.go's table stays
// WalT's.
func init() { settingDefs = append(settingDefs, powerSettingDefs...) }

// hiddenPower: a node shows its power settings once one of them is set;
// until then they are all defaults and stay out of the way.
func hiddenPower(def settingDef, stored map[string]string) bool {
	isPower := false
	for _, p := range powerSettingDefs {
		isPower = isPower || p.name == def.name
	}
	if !isPower {
		return false
	}
	for _, p := range powerSettingDefs {
		if _, ok := stored[p.name]; ok {
			return false
		}
	}
	return true
}

var powerMethods = []string{vocab.PowerPoE, vocab.PowerIPMI, vocab.PowerRedfish, vocab.PowerCommandMethod, vocab.PowerNone}

func powerMethod(v string) (string, error) {
	for _, m := range powerMethods {
		if strings.ToLower(v) == m {
			return m, nil
		}
	}
	return "", fmt.Errorf("setting 'power.method' only allows values 'poe', 'ipmi', 'redfish', 'command' or 'none'.")
}

func powerCommand(v string) (string, error) {
	t, err := command.Parse(v)
	if err != nil {
		return "", err
	}
	return t.String(), nil
}

func redfishURL(v string) (string, error) {
	u, err := redfish.ParseURL(v)
	if err != nil {
		return "", err
	}
	if _, err := netip.ParseAddr(u.Hostname()); err == nil {
		if _, err := checkIP("redfish.url", u.Hostname()); err != nil {
			return "", err
		}
	}
	return u.String(), nil
}

// durationSetting parses a Go duration or a number of seconds within r.
func durationSetting(r bound.Duration, example string) func(string) (string, error) {
	return func(v string) (string, error) {
		d, err := r.Parse(v)
		if errors.Is(err, bound.ErrNotNumber) {
			return "", fmt.Errorf("'%s' is not a valid value for option '%s'.\n        Use for example %s.", v, r.Name, example)
		}
		if err != nil {
			return "", err
		}
		return d.String(), nil
	}
}

// bmcHost is an IP address or a DNS name: what the IPMI driver sends
// packets to. An address must be one a device may have (checkIP).
func bmcHost(v string) (string, error) {
	if _, err := netip.ParseAddr(v); err == nil || strings.Contains(v, ":") {
		// The rules of device addresses: no link-local (cloud metadata
		// services), multicast, broadcast or unspecified address.
		a, err := checkIP("ipmi.host", v)
		if err != nil {
			return "", err
		}
		return a.String(), nil
	}
	if v == "" || len(v) > 253 {
		return "", fmt.Errorf("setting 'ipmi.host' must be an IP address or a host name of 1 to 253 characters.")
	}
	for _, label := range strings.Split(v, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", fmt.Errorf("setting 'ipmi.host': '%s' is not a valid host name.", v)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return "", fmt.Errorf("setting 'ipmi.host': '%s' is not a valid host name.", v)
			}
		}
	}
	return strings.ToLower(v), nil
}

// credential accepts 1 to max bytes of printable ASCII (a BMC's user
// names and passwords: IPMI 2.0 allows 16 and 20 bytes). The messages
// never quote the value: it may be a password.
func credential(name string, max int) func(string) (string, error) {
	return func(v string) (string, error) {
		if v == "" || len(v) > max {
			return "", fmt.Errorf("setting '%s' must have 1 to %d characters.", name, max)
		}
		for i := 0; i < len(v); i++ {
			if v[i] < 0x20 || v[i] > 0x7e {
				return "", fmt.Errorf("setting '%s' only allows printable ASCII characters.", name)
			}
		}
		return v, nil
	}
}

// powerNeeds lists the settings each power method needs.
var powerNeeds = map[string][]string{
	vocab.PowerIPMI:          {vocab.IPMIHost, vocab.IPMIUser, vocab.IPMIPassword},
	vocab.PowerRedfish:       {vocab.RedfishURL, vocab.RedfishUser, vocab.RedfishPassword},
	vocab.PowerCommandMethod: {vocab.PowerCommand},
}

// checkPowerConfig checks the power settings a node would have after the
// change, whole: the method's settings are all there, and a virtual node
// keeps the default method (its hard reboot restarts its VM).
func checkPowerConfig(d store.Device, merged, changed map[string]string) error {
	if d.Type != store.TypeNode {
		return nil
	}
	method := merged[vocab.PowerMethod]
	if method == "" {
		method = vocab.PowerPoE
	}
	if d.Virtual && method != vocab.PowerPoE {
		return culprits(invalidf("node %s is virtual: its hard reboot restarts its VM, so 'power.method' cannot be '%s'.", d.Name, method), []string{d.Name})
	}
	var missing []string
	for _, k := range powerNeeds[method] {
		if merged[k] == "" {
			missing = append(missing, "'"+k+"'")
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if _, ok := changed[vocab.PowerMethod]; ok {
		return culprits(invalidf("cannot set 'power.method' to '%s' unless %s %s defined too (device %s).",
			method, strings.Join(missing, " and "), plural(missing, "is", "are"), d.Name), []string{d.Name})
	}
	return culprits(invalidf("node %s has 'power.method' %s, which needs %s.", d.Name, method, strings.Join(missing, " and ")), []string{d.Name})
}

// withCuts gives a streamed node result what the power source said of
// each hard attempt's cut (the history does not keep it).
func withCuts(nr *api.NodeResult, res reboot.Result) {
	if len(nr.Attempts) != len(res.Attempts) {
		return
	}
	for i, a := range res.Attempts {
		if a.Cut != nil {
			v := a.Cut.Verified
			nr.Attempts[i].CutVerified, nr.Attempts[i].Cut = &v, a.Cut.Detail
		}
	}
}
