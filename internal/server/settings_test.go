package server

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/internal/store"
	"github.com/walt-testbed/walt/internal/vocab"
)

// Devices of every category, for planConfig.
var (
	testVNode  = store.Device{MAC: "52:54:00:00:00:01", Name: "vn1", Type: store.TypeNode, Virtual: true}
	testSwitch = store.Device{MAC: "52:54:00:00:00:02", Name: "sw1", Type: store.TypeSwitch}
	testOther  = store.Device{MAC: "52:54:00:00:00:03", Name: "unknown-3", Type: store.TypeUnknown}
)

// devsFor returns the devices a setting applies to.
func devsFor(name string) []store.Device {
	def, _ := lookupSetting(name)
	switch def.cat {
	case catSwitch:
		return []store.Device{testSwitch}
	case catUnknown:
		return []store.Device{testOther}
	}
	return []store.Device{testVNode}
}

// TestSettingBounds: every number setting is bounded, and a value out of
// bounds is refused with an error naming setting, bounds and value. Before,
// boot.timeout=18446744074 was accepted and wrapped to a 0.29 s watchdog.
func TestSettingBounds(t *testing.T) {
	t.Parallel()
	cases := []struct{ arg, want string }{
		{"boot.timeout=9223372036854775807", "boot.timeout: must be between 60s and 86400s (got 9223372036854775807)"},
		{"boot.timeout=10000000000", "boot.timeout: must be between 60s and 86400s (got 10000000000)"},
		{"boot.timeout=18446744074", "boot.timeout: must be between 60s and 86400s (got 18446744074)"},
		{"boot.timeout=86401", "boot.timeout: must be between 60s and 86400s (got 86401)"},
		{"boot.timeout=99999999999999999999", "boot.timeout: must be between 60s and 86400s (got 99999999999999999999)"},
		{"boot.retries=1001", "boot.retries: must be between 0 and 1000 (got 1001)"},
		{"boot.retries=9223372036854775808", "boot.retries: must be between 0 and 1000 (got 9223372036854775808)"},
		{"boot.delay=3601", "boot.delay: must be between 0s and 3600s (got 3601)"},
		{"boot.delay=9223372036854775807", "boot.delay: must be between 0s and 3600s (got 9223372036854775807)"},
		{"cpu.cores=256", "cpu.cores: must be between 1 and 255 (got 256)"},
		{"ram=4097G", "ram: must be between 1G and 4096G (got 4097G)"},
		{"ram=9223372036854775807M", "ram: must be between 1M and 4194304M (got 9223372036854775807M)"},
		{"poe.delay=1e300", "poe.delay: must be between 100ms and 1m (got 1e300)"},
		{"poe.delay=18446744074", "poe.delay: must be between 100ms and 1m (got 18446744074)"},
		{"poe.delay=Inf", "poe.delay: must be between 100ms and 1m (got Inf)"},
		{"poe.delay=NaN", "'NaN' is not a valid value for option 'poe.delay'.\n        Use for example '2s' or '500ms' (off period of a PoE power-cycle)."},
		{"snmp.port=65536", "snmp.port: must be between 1 and 65535 (got 65536)"},
		{"snmp.port=18446744073709551617", "snmp.port: must be between 1 and 65535 (got 18446744073709551617)"},
		// WalT's own messages stay for what WalT refuses.
		{"boot.timeout=-18446744074", "'-18446744074' is not a valid value for option 'boot.timeout'.\n        Use for example '180' for waiting 3 minutes before considering the node is stuck and force-rebooting it, or 'none' to disable."},
		{"boot.timeout=59", "A boot timeout of 59s is probably too small for some OS images.\n        Only \"none\" and values higher than 60 are allowed for this setting."},
		{"cpu.cores=0", "'0' is not a valid value for cpu.cores (expecting for instance 4)."},
	}
	for _, c := range cases {
		name, _, _ := strings.Cut(c.arg, "=")
		_, err := planConfig(devsFor(name), nil, []string{c.arg})
		if !errors.Is(err, vocab.ErrInvalid) || err.Error() != c.want {
			t.Errorf("planConfig(%s) = %v, want %q", c.arg, err, c.want)
		}
	}
	for _, arg := range []string{"boot.timeout=86400", "boot.timeout=60", "boot.timeout=none", "boot.retries=1000", "boot.retries=0",
		"boot.delay=3600", "cpu.cores=255", "ram=4096G", "poe.delay=60", "poe.delay=0.1", "snmp.port=65535"} {
		name, _, _ := strings.Cut(arg, "=")
		if _, err := planConfig(devsFor(name), nil, []string{arg}); err != nil {
			t.Errorf("planConfig(%s) = %v, want accepted", arg, err)
		}
	}
}

// TestStoredOverflowReadsAsDefault: a value an older server stored before
// the bounds existed does not wrap: the watchdog uses the default.
func TestStoredOverflowReadsAsDefault(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"18446744074", "10000000000", "9223372036854775807"} {
		d, on := watchdogTimeout(map[string]string{"boot.timeout": v})
		if !on || d != 180*time.Second {
			t.Errorf("watchdogTimeout(boot.timeout=%s) = %s, %v; want the default 3m0s", v, d, on)
		}
	}
	if got := effective(map[string]string{"boot.retries": "9223372036854775807"}, "boot.retries"); got != "9" {
		t.Errorf("effective(boot.retries=9223372036854775807) = %q, want the default 9", got)
	}
	if d, on := watchdogTimeout(map[string]string{"boot.timeout": "86400"}); !on || d != 24*time.Hour {
		t.Errorf("watchdogTimeout(boot.timeout=86400) = %s, %v; want 24h", d, on)
	}
}

// FuzzSettings feeds one name=value to the validation of walt node config
// and walt device config: it never panics, refuses with ErrInvalid, and a
// value it accepts is stored normalised (checked again, it stays the same),
// within bounds (numbers) and positive (durations).
func FuzzSettings(f *testing.F) {
	for _, s := range []string{"boot.timeout=180", "boot.timeout=18446744074", "boot.timeout=none", "boot.retries=9",
		"boot.delay=random", "boot.delay=3600", "cpu.cores=4", "ram=1024M", "ram=4097G", "poe.delay=1500ms",
		"poe.delay=1e300", "snmp.port=161", "snmp.community=private", "snmp.version=2", "kexec.allow=TRUE",
		"lldp.explore=false", "poe.reboots=false", "type=switch", "x", "=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		name, _, _ := strings.Cut(arg, "=")
		plan, err := planConfig(devsFor(name), nil, []string{arg})
		if err != nil {
			if !errors.Is(err, vocab.ErrInvalid) {
				t.Fatalf("planConfig(%q) = %v, not ErrInvalid", arg, err)
			}
			return
		}
		def, _ := lookupSetting(name)
		for _, c := range plan.changes {
			v, ok := c.Set[name]
			if !ok {
				continue // type=switch changes the type
			}
			if again, err := def.parse(*v); err != nil || again != *v {
				t.Fatalf("planConfig(%q) stored %q, which parses as %q, %v", arg, *v, again, err)
			}
			checkStoredBounds(t, name, *v)
		}
	})
}

// checkStoredBounds checks a stored value against the documented bounds.
func checkStoredBounds(t *testing.T, name, v string) {
	t.Helper()
	ranges := map[string][2]int64{"boot.timeout": {60, 86400}, "boot.retries": {0, 1000}, "boot.delay": {0, 3600},
		"cpu.cores": {1, 255}, "snmp.port": {1, 65535}}
	if r, ok := ranges[name]; ok && v != "none" && v != "random" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < r[0] || n > r[1] {
			t.Fatalf("%s=%q stored, want a number from %d to %d", name, v, r[0], r[1])
		}
	}
	if name == "poe.delay" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 100*time.Millisecond || d > time.Minute {
			t.Fatalf("poe.delay=%q stored, want a duration from 100ms to 1m", v)
		}
	}
	if name == "boot.timeout" && v != "none" {
		if d, on := watchdogTimeout(map[string]string{name: v}); !on || d < time.Minute || d > 24*time.Hour {
			t.Fatalf("boot.timeout=%q stored, watchdog timeout %s", v, d)
		}
	}
}

// TestVocabularyKeysAreSettings: every setting key of the shared
// vocabulary is a setting the server knows, of the right kind of device.
func TestVocabularyKeysAreSettings(t *testing.T) {
	t.Parallel()
	keys := map[string]category{
		vocab.BootRetries: catNode, vocab.BootTimeout: catNode, vocab.KexecAllow: catNode,
		vocab.LLDPExplore: catSwitch, vocab.PoEDelay: catSwitch, vocab.PoEReboots: catSwitch,
		vocab.SNMPCommunity: catSwitch, vocab.SNMPPort: catSwitch, vocab.SNMPVersion: catSwitch,
	}
	for key, cat := range keys {
		def, ok := lookupSetting(key)
		if !ok || def.cat != cat {
			t.Errorf("lookupSetting(%q) = %+v, %v; want a setting of category %d", key, def, ok, cat)
		}
	}
}
