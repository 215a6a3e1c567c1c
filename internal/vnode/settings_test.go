package vnode

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSettingsSet(t *testing.T) {
	for _, tc := range []struct {
		key, value string
		want       Settings // from DefaultSettings
		err        string
	}{
		{"ram", "1G", Settings{CPUCores: 4, RAMMiB: 1024, BootDelay: BootDelay{Random: true}}, ""},
		{"ram", "384M", Settings{CPUCores: 4, RAMMiB: 384, BootDelay: BootDelay{Random: true}}, ""},
		{"ram", "512", Settings{}, "'512' is not a valid value for ram (expecting for instance 512M or 1G)."},
		{"ram", "0M", Settings{}, "'0M' is not a valid value for ram (expecting for instance 512M or 1G)."},
		{"ram", "-1G", Settings{}, "'-1G' is not a valid value for ram (expecting for instance 512M or 1G)."},
		{"ram", "1g", Settings{}, "'1g' is not a valid value for ram (expecting for instance 512M or 1G)."},
		{"cpu.cores", "2", Settings{CPUCores: 2, RAMMiB: 512, BootDelay: BootDelay{Random: true}}, ""},
		{"cpu.cores", "0", Settings{}, "'0' is not a valid value for cpu.cores (expecting for instance 4)."},
		{"cpu.cores", "two", Settings{}, "'two' is not a valid value for cpu.cores (expecting for instance 4)."},
		{"boot.delay", "0", Settings{CPUCores: 4, RAMMiB: 512, BootDelay: BootDelay{Seconds: 0}}, ""},
		{"boot.delay", "7", Settings{CPUCores: 4, RAMMiB: 512, BootDelay: BootDelay{Seconds: 7}}, ""},
		{"boot.delay", "random", DefaultSettings(), ""},
		{"boot.delay", "-2", Settings{}, "'-2' is not a valid value for option 'boot.delay'.\n        Use for example '2' for 2s, '0' to disable, 'random' for a random delay between 1 and 10s."},
		{"disks", "none", Settings{}, "Unknown setting 'disks'. See: 'walt help show device-config'"},
		// Our bounds, beyond WalT's checks: no count or delay overflows.
		{"cpu.cores", "255", Settings{CPUCores: 255, RAMMiB: 512, BootDelay: BootDelay{Random: true}}, ""},
		{"cpu.cores", "256", Settings{}, "cpu.cores: must be between 1 and 255 (got 256)"},
		{"cpu.cores", "9223372036854775808", Settings{}, "cpu.cores: must be between 1 and 255 (got 9223372036854775808)"},
		{"cpu.cores", " 2", Settings{}, "' 2' is not a valid value for cpu.cores (expecting for instance 4)."},
		{"ram", "4096G", Settings{CPUCores: 4, RAMMiB: 4 << 20, BootDelay: BootDelay{Random: true}}, ""},
		{"ram", "4097G", Settings{}, "ram: must be between 1G and 4096G (got 4097G)"},
		{"ram", "4194305M", Settings{}, "ram: must be between 1M and 4194304M (got 4194305M)"},
		{"ram", "18014398509481984G", Settings{}, "ram: must be between 1G and 4096G (got 18014398509481984G)"},
		{"ram", "1T", Settings{}, "'1T' is not a valid value for ram (expecting for instance 512M or 1G)."},
		{"boot.delay", "3600", Settings{CPUCores: 4, RAMMiB: 512, BootDelay: BootDelay{Seconds: 3600}}, ""},
		{"boot.delay", "3601", Settings{}, "boot.delay: must be between 0s and 3600s (got 3601)"},
		{"boot.delay", "9223372036854775807", Settings{}, "boot.delay: must be between 0s and 3600s (got 9223372036854775807)"},
		{"boot.delay", "+2", Settings{}, "'+2' is not a valid value for option 'boot.delay'.\n        Use for example '2' for 2s, '0' to disable, 'random' for a random delay between 1 and 10s."},
	} {
		s := DefaultSettings()
		err := s.Set(tc.key, tc.value)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err || !errors.Is(err, ErrInvalidSetting) {
				t.Errorf("Set(%s, %q) = %v, want %q", tc.key, tc.value, err, tc.err)
			}
			if diff := cmp.Diff(DefaultSettings(), s); diff != "" {
				t.Errorf("Set(%s, %q) failed but changed the settings: %s", tc.key, tc.value, diff)
			}
			continue
		}
		if err != nil {
			t.Errorf("Set(%s, %q) = %v", tc.key, tc.value, err)
			continue
		}
		if diff := cmp.Diff(tc.want, s); diff != "" {
			t.Errorf("Set(%s, %q): (-want +got)\n%s", tc.key, tc.value, diff)
		}
		if got, _ := s.Get(tc.key); got != tc.value && !(tc.key == "ram" && got == "1G" && tc.value == "1024M") {
			t.Errorf("Get(%s) = %q after Set(%q)", tc.key, got, tc.value)
		}
	}
}

// TestValidateBounds: settings built in Go meet the bounds of Set.
func TestValidateBounds(t *testing.T) {
	for _, tc := range []struct {
		s    Settings
		want string
	}{
		{Settings{CPUCores: 4, RAMMiB: 512, BootDelay: BootDelay{Seconds: 1 << 40}}, "boot.delay: must be between 0s and 3600s (got 1099511627776)"},
		{Settings{CPUCores: 1000, RAMMiB: 512}, "cpu.cores: must be between 1 and 255 (got 1000)"},
		{Settings{CPUCores: 4, RAMMiB: maxRAMMiB + 1}, "ram: must be between 1M and 4194304M (got 4194305)"},
		{Settings{CPUCores: 0, RAMMiB: 512}, "'0' is not a valid value for cpu.cores (expecting for instance 4)."},
		{Settings{CPUCores: 4, RAMMiB: 512, BootDelay: BootDelay{Seconds: 3600}}, ""},
	} {
		err := tc.s.validate()
		if got := fmt.Sprint(err); tc.want == "" && err != nil || tc.want != "" && got != tc.want {
			t.Errorf("validate(%+v) = %v, want %q", tc.s, err, tc.want)
		}
	}
}

// FuzzSet: Set never panics, refuses with ErrInvalidSetting and leaves
// the settings alone, and what it accepts is within bounds and reads back
// to a value Set accepts again with the same result.
func FuzzSet(f *testing.F) {
	for _, kv := range [][2]string{{"cpu.cores", "4"}, {"ram", "1024M"}, {"ram", "4097G"}, {"boot.delay", "random"},
		{"boot.delay", "9223372036854775807"}, {"cpu.cores", "-0"}, {"disks", "none"}} {
		f.Add(kv[0], kv[1])
	}
	f.Fuzz(func(t *testing.T, key, value string) {
		s := DefaultSettings()
		if err := s.Set(key, value); err != nil {
			if !errors.Is(err, ErrInvalidSetting) || s != DefaultSettings() {
				t.Fatalf("Set(%q, %q) = %v, settings %+v", key, value, err, s)
			}
			return
		}
		if err := s.validate(); err != nil {
			t.Fatalf("Set(%q, %q) accepted settings validate refuses: %v", key, value, err)
		}
		if d := s.BootDelay.Duration(); d < 0 || d > time.Hour {
			t.Fatalf("Set(%q, %q): boot delay %s", key, value, d)
		}
		norm, _ := s.Get(key)
		again := DefaultSettings()
		if err := again.Set(key, norm); err != nil || again != s {
			t.Fatalf("Set(%q, %q) then Get = %q, which sets %+v, %v; want %+v", key, value, norm, again, err, s)
		}
	})
}

func TestBootDelayRandom(t *testing.T) {
	seen := map[int]bool{}
	for range 500 {
		d := BootDelay{Random: true}.Duration()
		s := int(d.Seconds())
		if s < 1 || s > 10 || d != d.Truncate(1e9) {
			t.Fatalf("random boot delay %s, want 1 to 10 whole seconds", d)
		}
		seen[s] = true
	}
	if len(seen) != 10 {
		t.Errorf("500 random boot delays took %d distinct values, want 10", len(seen))
	}
}

func TestGuestURL(t *testing.T) {
	for in, want := range map[string]string{
		"":                       "",
		"http://127.0.0.1:8080/": "http://10.0.2.2:8080/",
		"http://localhost:80":    "http://10.0.2.2:80",
		"http://192.0.2.7:8080":  "http://192.0.2.7:8080",
	} {
		if got := guestURL(in); got != want {
			t.Errorf("guestURL(%q) = %q, want %q", in, got, want)
		}
	}
}
