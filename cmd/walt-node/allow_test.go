package main

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseAllowFrom(t *testing.T) {
	t.Parallel()
	got, err := parseAllowFrom(" 192.168.152.0/24, 10.0.2.2 ,::1,::ffff:127.0.0.1/104,")
	want := []netip.Prefix{netip.MustParsePrefix("192.168.152.0/24"), netip.MustParsePrefix("10.0.2.2/32"),
		netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("127.0.0.0/8")}
	if err != nil || !cmp.Equal(got, want, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })) {
		t.Errorf("parseAllowFrom = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"x", "10.0.0.0/33", "10.0.0.1/", strings.Repeat("10.0.0.1,", 65)} {
		if _, err := parseAllowFrom(bad); err == nil {
			t.Errorf("parseAllowFrom(%.20q): no error", bad)
		}
	}
}

// --allow-from without --server is a usage error: without --server every
// peer is obeyed anyway.
func TestAllowFromNeedsServer(t *testing.T) {
	t.Parallel()
	if code, out := runConfigured(t, []string{"--allow-from", "10.0.0.0/8", "--boot-mode", "network", "--virtual", "false"}, nil); code == 0 || !strings.Contains(out, "--allow-from needs --server") {
		t.Errorf("--allow-from without --server: exit %d, %s", code, out)
	}
}

func FuzzParseAllowFrom(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "10.0.2.2,::1", "::ffff:1.2.3.4/120", ",,", "1.2.3.4/40"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := parseAllowFrom(s)
		if err != nil {
			return
		}
		if len(ps) > maxAllowFrom {
			t.Fatalf("%d prefixes, at most %d", len(ps), maxAllowFrom)
		}
		for _, p := range ps {
			if !p.IsValid() || p != p.Masked() || p.Addr().Is4In6() {
				t.Fatalf("parseAllowFrom(%q) gave %v", s, p)
			}
		}
	})
}
