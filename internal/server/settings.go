package server

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/walt-testbed/walt/internal/bound"
	"github.com/walt-testbed/walt/internal/nodeset"
	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/vnode"
	"github.com/walt-testbed/walt/internal/vocab"
)

//lint:file-ignore ST1005 the settings' errors are WalT's user-facing messages, kept byte for byte

// Unspecified is how a setting without value is shown.
const Unspecified = "<unspecified>"

// masked replaces secret values when shown.
const masked = "********"

// category says which devices a setting applies to.
type category int

const (
	catNode category = iota
	catSwitch
	catUnknown
)

// settingDef describes one setting: where it applies, its default, and how
// its value is checked and normalised.
// SettingDefaults returns the name of every setting the server knows, with
// its default ("" when it has none): the help topics and docs/cli.md are
// checked against it.
func SettingDefaults() map[string]string {
	out := make(map[string]string, len(settingDefs))
	for _, d := range settingDefs {
		out[d.name] = d.def
	}
	return out
}

type settingDef struct {
	name   string
	cat    category
	def    string // "" means unspecified
	secret bool
	// parse returns the stored form of a value, or WalT's message.
	parse func(v string) (string, error)
	// virtualOnly: only virtual nodes have it; reboot: it applies at the
	// node's next boot.
	virtualOnly, reboot bool
}

var settingDefs = []settingDef{
	{name: vocab.BootRetries, cat: catNode, def: "9", parse: intSetting(bootRetriesRange, "        Use for example '2' for retrying twice after a failed boot, '0' to disable.", nil)},
	{name: "boot.delay", cat: catNode, def: "random", parse: vnodeSetting(vnode.KeyBootDelay), virtualOnly: true, reboot: true},
	{name: vocab.BootTimeout, cat: catNode, def: "180", parse: bootTimeout},
	{name: "cpu.cores", cat: catNode, def: "4", parse: vnodeSetting(vnode.KeyCPUCores), virtualOnly: true, reboot: true},
	{name: vocab.KexecAllow, cat: catNode, def: "true", parse: boolSetting(vocab.KexecAllow)},
	{name: "ram", cat: catNode, def: "512M", parse: vnodeSetting(vnode.KeyRAM), virtualOnly: true, reboot: true},
	{name: vocab.LLDPExplore, cat: catSwitch, def: "false", parse: boolSetting(vocab.LLDPExplore)},
	{name: vocab.PoEDelay, cat: catSwitch, def: "2s", parse: poeDelay},
	{name: vocab.PoEReboots, cat: catSwitch, def: "false", parse: boolSetting(vocab.PoEReboots)},
	{name: vocab.SNMPCommunity, cat: catSwitch, secret: true, parse: snmpCommunity},
	{name: vocab.SNMPPort, cat: catSwitch, def: "161", parse: snmpPort},
	{name: vocab.SNMPVersion, cat: catSwitch, parse: snmpVersion},
	{name: "type", cat: catUnknown, parse: func(v string) (string, error) {
		if v != "switch" {
			return "", fmt.Errorf("setting 'type' only allows value 'switch'.")
		}
		return v, nil
	}},
}

func lookupSetting(name string) (settingDef, bool) {
	for _, d := range settingDefs {
		if d.name == name {
			return d, true
		}
	}
	return settingDef{}, false
}

func boolSetting(name string) func(string) (string, error) {
	return func(v string) (string, error) {
		switch strings.ToLower(v) {
		case "true":
			return "true", nil
		case "false":
			return "false", nil
		}
		return "", fmt.Errorf("setting '%s' only allows values 'true' or 'false'.", name)
	}
}

// Bounds of the number settings (docs/cli.md). WalT refuses what is not a
// number and, for boot.timeout, values below 60 s, with its own messages;
// the other bounds are ours, so that no count or duration overflows.
var (
	bootTimeoutRange = vocab.BootTimeoutRange
	bootRetriesRange = vocab.BootRetriesRange
	poeDelayRange    = vocab.PoEDelayRange
	snmpPortRange    = vocab.SNMPPortRange
	// linkPortRange is LLDP-MIB's LldpPortNumber, 1 to 4096: the ports a
	// rescan can find, and those walt device link may record.
	linkPortRange = bound.Int{Name: "port", Min: 1, Max: 4096}
	// waitTimeoutRange bounds POST /waits timeouts (0: none), as the CLI
	// bounds walt node wait --timeout.
	waitTimeoutRange = bound.Duration{Name: "timeout", Min: 0, Max: 24 * time.Hour}
)

// intSetting parses a whole number within r. What is not a number, or is
// negative, gets WalT's message with hint; a value below r.Min gets
// tooSmall(value) (WalT's message) if not nil; a value above r.Max gets the
// bound's error.
func intSetting(r bound.Int, hint string, tooSmall func(v string) error) func(string) (string, error) {
	return func(v string) (string, error) {
		n, err := r.Parse(v)
		switch {
		case err == nil:
			return strconv.FormatInt(n, 10), nil
		case errors.Is(err, bound.ErrNotNumber) || strings.HasPrefix(v, "-"):
			return "", fmt.Errorf("'%s' is not a valid value for option '%s'.\n%s", v, r.Name, hint)
		case bound.Below(err) && tooSmall != nil:
			return "", tooSmall(v)
		}
		return "", err
	}
}

func bootTimeout(v string) (string, error) {
	if strings.ToLower(v) == "none" {
		return "none", nil
	}
	return intSetting(bootTimeoutRange,
		"        Use for example '180' for waiting 3 minutes before considering the node is stuck and force-rebooting it, or 'none' to disable.",
		func(v string) error {
			return fmt.Errorf("A boot timeout of %ss is probably too small for some OS images.\n        Only \"none\" and values higher than 60 are allowed for this setting.", v)
		})(v)
}

func snmpVersion(v string) (string, error) {
	if v != "1" && v != "2" {
		return "", fmt.Errorf("value of setting 'snmp.version' should be '1' or '2'.")
	}
	return v, nil
}

// snmpPort is the switch's SNMP agent port: 161 for real switches, another
// one for simulated switches run without privileges.
func snmpPort(v string) (string, error) {
	n, err := snmpPortRange.Parse(v)
	if errors.Is(err, bound.ErrNotNumber) {
		return "", fmt.Errorf("value of setting 'snmp.port' should be a UDP port number, 1 to 65535 (got '%s').", v)
	}
	if err != nil {
		return "", err
	}
	return strconv.FormatInt(n, 10), nil
}

// snmpCommunity accepts printable ASCII only: the value goes into SNMP
// packets, never to a shell, but control characters have no business there.
func snmpCommunity(v string) (string, error) {
	if v == "" || len(v) > 64 {
		return "", fmt.Errorf("setting 'snmp.community' must have 1 to 64 characters.")
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x21 || v[i] > 0x7e {
			return "", fmt.Errorf("setting 'snmp.community' only allows printable ASCII characters without spaces.")
		}
	}
	return v, nil
}

// poeDelay accepts a Go duration ("1500ms", "3s") or a number of seconds.
func poeDelay(v string) (string, error) {
	d, err := poeDelayRange.Parse(v)
	if errors.Is(err, bound.ErrNotNumber) {
		return "", fmt.Errorf("'%s' is not a valid value for option 'poe.delay'.\n        Use for example '2s' or '500ms' (off period of a PoE power-cycle).", v)
	}
	if err != nil {
		return "", err
	}
	return d.String(), nil
}

// vnodeSetting checks and normalises a VM setting with WalT's messages
// ("1024M" is stored as "1G").
func vnodeSetting(key string) func(string) (string, error) {
	return func(v string) (string, error) {
		var vs vnode.Settings
		if err := vs.Set(key, v); err != nil {
			return "", err
		}
		norm, _ := vs.Get(key)
		return norm, nil
	}
}

func categoryOf(d store.Device) category {
	switch d.Type {
	case store.TypeNode:
		return catNode
	case store.TypeSwitch:
		return catSwitch
	}
	return catUnknown
}

// configPlan is a validated set of setting changes, ready for the store.
type configPlan struct {
	changes  []store.DeviceChange
	messages []string
}

// planConfig validates a whole `config` command against devices and their
// stored settings and returns the changes to apply. Any error means nothing
// may change; its message names the culprit.
func planConfig(devs []store.Device, stored map[string]map[string]string, args []string) (configPlan, error) {
	values := map[string]string{}
	var order []string
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return configPlan{}, invalidf("Please provide settings as `<setting name>=<setting value>` arguments (got %q).", a)
		}
		def, known := lookupSetting(k)
		if !known {
			return configPlan{}, invalidf("Unknown setting '%s'. See: 'walt help show device-config'", k)
		}
		norm, err := def.parse(v)
		if err != nil {
			return configPlan{}, culprits(invalidf("%s", err.Error()), []string{k})
		}
		if _, dup := values[k]; !dup {
			order = append(order, k)
		}
		values[k] = norm
	}
	_, typeChange := values["type"]
	for _, k := range order {
		def, _ := lookupSetting(k)
		if err := checkCategory(def, devs, typeChange); err != nil {
			return configPlan{}, err
		}
	}
	var plan configPlan
	for _, d := range devs {
		merged := map[string]string{}
		for k, v := range stored[d.MAC] {
			merged[k] = v
		}
		c := store.DeviceChange{MAC: d.MAC, Set: map[string]*string{}}
		for _, k := range order {
			if k == "type" {
				t := store.TypeSwitch
				c.Type = &t
				if strings.Contains(d.Name, "unknown") {
					n := strings.ReplaceAll(d.Name, "unknown", "switch")
					c.Name = &n
					plan.messages = append(plan.messages, fmt.Sprintf("Renaming %s to %s for clarity.", d.Name, n))
				}
				continue
			}
			v := values[k]
			merged[k] = v
			c.Set[k] = &v
		}
		if err := checkSwitchConfig(d.Name, merged, values); err != nil {
			return configPlan{}, err
		}
		if err := checkPowerConfig(d, merged, values); err != nil {
			return configPlan{}, err
		}
		plan.changes = append(plan.changes, c)
	}
	done := "Done."
	for _, k := range order {
		if def, _ := lookupSetting(k); def.reboot {
			done = "Done. Reboot node(s) to see new settings in effect."
		}
	}
	plan.messages = append(plan.messages, done)
	return plan, nil
}

// checkCategory checks that every device supports the setting. A type
// change to switch on the same command line lets unknown devices take
// switch settings.
func checkCategory(def settingDef, devs []store.Device, typeChange bool) error {
	var bad []string
	for _, d := range devs {
		cat := categoryOf(d)
		if typeChange && cat == catUnknown && def.cat == catSwitch {
			continue
		}
		if cat != def.cat {
			bad = append(bad, d.Name)
		}
	}
	if len(bad) == 0 && def.virtualOnly {
		for _, d := range devs {
			if !d.Virtual {
				bad = append(bad, d.Name)
			}
		}
		if len(bad) > 0 {
			return culprits(invalidf("%s, so '%s' setting is not supported.",
				nodeset.Describe(bad, "node", "nodes")+plural(bad, " is not virtual", " are not virtual"), def.name), bad)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	switch def.cat {
	case catNode:
		return culprits(invalidf("%s, so %s not support the '%s' setting.",
			nodeset.Describe(bad, "device", "devices")+plural(bad, " is not a node", " are not nodes"), plural(bad, "it does", "they do"), def.name), bad)
	case catSwitch:
		return culprits(invalidf("%s, so '%s' setting cannot be applied.",
			nodeset.Describe(bad, "device", "devices")+plural(bad, " is not a switch", " are not switches"), def.name), bad)
	}
	return culprits(invalidf("setting 'type' can only be applied to unknown devices (%s).", nodeset.Describe(bad, "device", "devices")+plural(bad, " is not", " are not")), bad)
}

// checkSwitchConfig checks the cross-setting rules on the configuration a
// switch would have after the change.
func checkSwitchConfig(name string, merged, changed map[string]string) error {
	if vocab.On(merged, vocab.PoEReboots) && !vocab.On(merged, vocab.LLDPExplore) {
		if _, ok := changed[vocab.PoEReboots]; ok {
			return culprits(invalidf("cannot set 'poe.reboots' to true unless 'lldp.explore' is set to true too (device %s).", name), []string{name})
		}
		return culprits(invalidf("cannot set 'lldp.explore' to false while 'poe.reboots' is true (device %s).", name), []string{name})
	}
	if vocab.On(merged, vocab.LLDPExplore) && (merged[vocab.SNMPVersion] == "" || merged[vocab.SNMPCommunity] == "") {
		return culprits(invalidf("cannot set 'lldp.explore' to true unless 'snmp.version' and 'snmp.community' are defined too (device %s).", name), []string{name})
	}
	return nil
}

// shownSettings returns every setting of a device's category, stored or
// default, secrets masked, sorted by name.
func shownSettings(d store.Device, stored map[string]string) []settingView {
	cat := categoryOf(d)
	var out []settingView
	for _, def := range settingDefs {
		if def.cat != cat || def.name == "type" || def.virtualOnly && !d.Virtual || hiddenPower(def, stored) {
			continue
		}
		v, ok := stored[def.name]
		sv := settingView{name: def.name, value: v, isDefault: !ok}
		if !ok {
			sv.value = def.def
		}
		if sv.value == "" {
			sv.value = Unspecified
		} else if def.secret {
			sv.value = masked
		}
		out = append(out, sv)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

type settingView struct {
	name, value string
	isDefault   bool
}

// effective returns the value of a setting for a device, default included.
// A stored value that today's checks refuse (an older server accepted
// boot.timeout=10000000000, which wraps as a duration) reads as the
// default.
func effective(stored map[string]string, name string) string {
	def, _ := lookupSetting(name)
	if v, ok := stored[name]; ok {
		if def.parse == nil {
			return v
		}
		if norm, err := def.parse(v); err == nil {
			return norm
		}
	}
	return def.def
}
