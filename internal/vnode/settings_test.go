package vnode

import (
	"errors"
	"testing"

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
