package experiment

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/walt-testbed/walt/api"
)

// FuzzParseMetric: a KEY=VALUE accepted has a key CheckMetricKey takes and
// a finite value that reads back from its text; anything else is an error.
func FuzzParseMetric(f *testing.F) {
	for _, s := range []string{"boot_s=12.5", "a.b-c=1e3", "x=NaN", "x=+Inf", "=1", "k=", "k==1", "a/b=1", "k=0x1p-2", strings.Repeat("k", 65) + "=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, v, err := ParseMetric(s)
		if err != nil {
			if len(err.Error()) > 512 {
				t.Fatalf("error of %d bytes for %d bytes of input", len(err.Error()), len(s))
			}
			return
		}
		if CheckMetricKey(k) != nil || math.IsNaN(v) || math.IsInf(v, 0) || !strings.HasPrefix(s, k+"=") {
			t.Fatalf("ParseMetric(%q) = %q, %v", s, k, v)
		}
		if w, err := strconv.ParseFloat(s[len(k)+1:], 64); err != nil || w != v {
			t.Fatalf("ParseMetric(%q) value %v, the text reads %v, %v", s, v, w, err)
		}
		if m := map[string]float64{k: v}; CheckMetrics(m) != nil || CheckDone(api.DoneReport{BootID: "b", Metrics: m}) != nil {
			t.Fatalf("a parsed metric %q=%v is refused by CheckMetrics", k, v)
		}
	})
}

func TestParseMetrics(t *testing.T) {
	m, err := ParseMetrics([]string{"a=1", "b.c=-2.5e3"})
	if err != nil || len(m) != 2 || m["a"] != 1 || m["b.c"] != -2500 {
		t.Fatalf("ParseMetrics = %v, %v", m, err)
	}
	for _, tt := range []struct {
		in   []string
		want string
	}{
		{[]string{"a=1", "a=2"}, "metric a given twice"},
		{[]string{"a"}, "want KEY=VALUE"},
		{[]string{"a=inf"}, "not a finite number"},
		{[]string{"a=1e999"}, "is not a number"},
		{[]string{"a b=1"}, "not allowed"},
		{make([]string, api.MaxDoneMetrics+1), "33 metrics given, at most 32"},
	} {
		if _, err := ParseMetrics(tt.in); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseMetrics(%q) = %v, want %q", tt.in, err, tt.want)
		}
	}
}

// FuzzCheckNodeMethod: an accepted node method is at most
// api.MaxNodeMethodLen bytes of letters, digits and '-'; a refusal names
// node_method.
func FuzzCheckNodeMethod(f *testing.F) {
	for _, s := range []string{"", "kexec", "soft-reboot", "ke xec", "kéxec", strings.Repeat("k", 33)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := CheckNodeMethod(s)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Culprit != "node_method" {
				t.Fatalf("CheckNodeMethod(%q) = %v, not naming node_method", s, err)
			}
			return
		}
		if len(s) > api.MaxNodeMethodLen || strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != "" {
			t.Fatalf("CheckNodeMethod accepted %q", s)
		}
	})
}
