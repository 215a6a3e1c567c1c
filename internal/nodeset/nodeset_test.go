package nodeset

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/walt-testbed/walt/internal/store/sqlstore"
)

func names(ts []Term) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.String())
	}
	return out
}

func TestParse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want []string
	}{
		{"rpi1", []string{"rpi1"}},
		{"rpi1,rpi2,rpi1", []string{"rpi1", "rpi2"}},
		{"my-nodes,sw1", []string{"my-nodes", "sw1"}},
		{"rpi[01-03]", []string{"rpi01", "rpi02", "rpi03"}},
		{"rpi[8-10]", []string{"rpi8", "rpi9", "rpi10"}},
		{"n[1-2,7],x", []string{"n1", "n2", "n7", "x"}},
		{"r[1-2]n[1-2]", []string{"r1n1", "r1n2", "r2n1", "r2n2"}},
		{"rpi[5]", []string{"rpi5"}},
		{"a.b_c-d", []string{"a.b_c-d"}},
		{"model:rpi-b,rpi1,model:rpi-b,model:pc-x86-64", []string{"model:rpi-b", "rpi1", "model:pc-x86-64"}},
	}
	for _, c := range cases {
		got, err := Parse(c.in)
		if err != nil {
			t.Errorf("Parse(%q) = %v", c.in, err)
			continue
		}
		if diff := cmp.Diff(c.want, names(got)); diff != "" {
			t.Errorf("Parse(%q) (-want +got):\n%s", c.in, diff)
		}
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"":                 "empty set",
		"model:":           "want model:NAME",
		"model:rpi[1-2]":   `character '[' not allowed in a model`,
		"model:a:b":        `character ':' not allowed in a model`,
		"a,,b":             "empty element",
		"a,":               "empty element",
		"rpi[1-":           "not closed",
		"rpi1]":            "without '['",
		"rpi[[1]]":         "nested",
		"rpi[3-1]":         "goes down",
		"rpi[a-b]":         `range "a-b"`,
		"rpi[]":            "empty range",
		"rpi 1":            "character ' '",
		"n[0-99999999]":    "more than 100000",
		"a[0-999]b[0-999]": "more than 100000",
		// Repeats count: the bound is on the work, not the result.
		"a[1-60000],a[1-60000]":                  "more than 100000 names",
		strings.Repeat("x", 65):                  "longer than 64 characters",
		strings.Repeat("x", 60) + "[1-99999]":    "longer than 64 characters",
		strings.Repeat("x", 62) + "[001-2]":      "longer than 64 characters",
		strings.Repeat("x", 61) + "[1-2]y[1-9]z": "longer than 64 characters",
	}
	for in, want := range cases {
		_, err := Parse(in)
		if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want ErrSyntax mentioning %q", in, err, want)
		}
	}
}

// repeat joins n copies of item with commas.
func repeat(item string, n int) string {
	return strings.TrimSuffix(strings.Repeat(item+",", n), ",")
}

// TestParseHostileSets: the sets of the hardening issue. 400 copies of
// a[0-99998] (4.4 KB) used to build 40 million names, 32 s of CPU; each
// now fails at once, naming the bound.
func TestParseHostileSets(t *testing.T) {
	t.Parallel()
	for _, set := range []string{repeat("a[0-99998]", 400), repeat("a[0-99999]", 2), repeat("my-nodes", MaxNames+1)} {
		start := time.Now()
		terms, err := Parse(set)
		if elapsed := time.Since(start); elapsed > time.Second {
			t.Errorf("Parse(%.40q...) took %s, want well under 1s", set, elapsed)
		}
		if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), "more than 100000 names") {
			t.Errorf("Parse(%.40q...) = %d terms, %v; want ErrSyntax naming the bound of 100000 names", set, len(terms), err)
		}
	}
}

// TestParseRepeatsLinearMemory: 64000 copies of a[1] (256 KB) are one
// name, and cost less memory than the set's own size (they cost 10 MB).
// Not parallel: it reads the allocations of the whole process.
func TestParseRepeatsLinearMemory(t *testing.T) {
	set := repeat("a[1]", 64000)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	terms, err := Parse(set)
	runtime.ReadMemStats(&after)
	if err != nil || len(terms) != 1 || terms[0].Name != "a1" {
		t.Fatalf("Parse(64000 x a[1]) = %v, %v; want [a1]", names(terms), err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > uint64(len(set)) {
		t.Errorf("Parse(64000 x a[1]) allocated %d bytes, want at most the set's %d bytes", got, len(set))
	}
}

// TestParseStopsWithContext: a request that ends stops the expansion.
func TestParseStopsWithContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	terms, err := ParseContext(ctx, "a[1-50000],b[1-50000]")
	if !errors.Is(err, context.Canceled) || terms != nil {
		t.Errorf("ParseContext(cancelled) = %d terms, %v; want context.Canceled", len(terms), err)
	}
	// Errors of the set come first, whatever the context.
	if _, err := ParseContext(ctx, "a[1-"); !errors.Is(err, ErrSyntax) {
		t.Errorf("ParseContext(cancelled, bad set) = %v, want ErrSyntax", err)
	}
	if terms, err := ParseContext(ctx, "a[1-1000]"); err != nil || len(terms) != 1000 {
		t.Errorf("ParseContext(cancelled, small set) = %d terms, %v; want 1000 terms (the context is read every %d names)", len(terms), err, checkEvery)
	}
}

// TestMaxNameLenIsTheStoreBound: a set can name every device the store
// accepts, and no longer name.
func TestMaxNameLenIsTheStoreBound(t *testing.T) {
	t.Parallel()
	longest := strings.Repeat("n", MaxNameLen)
	if err := sqlstore.ValidateName(longest); err != nil {
		t.Errorf("store refuses a %d-character name: %v", MaxNameLen, err)
	}
	if err := sqlstore.ValidateName(longest + "n"); err == nil {
		t.Errorf("store accepts a %d-character name, nodeset does not", MaxNameLen+1)
	}
	if terms, err := Parse(longest[3:] + "[001-002]"); err != nil || len(terms) != 2 || len(terms[0].Name) != MaxNameLen {
		t.Errorf("Parse(%d-character names) = %v, %v", MaxNameLen, names(terms), err)
	}
}

// TestParseErrorsStayShort: an error quotes a bounded part of the set.
func TestParseErrorsStayShort(t *testing.T) {
	t.Parallel()
	for _, set := range []string{repeat("a[1]", 64000) + ",a[", repeat("a[1]", 64000) + ",a b", repeat("a[0-99999]", 1000)} {
		_, err := Parse(set)
		switch {
		case err == nil:
			t.Errorf("Parse(%d bytes) accepted a bad set", len(set))
		case len(err.Error()) > 300:
			t.Errorf("Parse(%d bytes) = error of %d bytes, want one of at most 300", len(set), len(err.Error()))
		}
	}
}

// parseBudget is the time a parse may take in FuzzParse: 50 ms, plus
// 25 µs for each term returned (at most MaxNames). It catches work that
// grows faster than the output (a quadratic parse of MaxNames terms takes
// minutes), not slowness: an idle machine here parses 100000 terms in
// 80 ms (under 1 µs a term), and one loaded by the whole test suite has
// taken 610 ms.
func parseBudget(terms int) time.Duration {
	return 50*time.Millisecond + time.Duration(terms)*25*time.Microsecond
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"rpi[01-12]", "a,b,my-nodes", "r[1-2]n[3,5-6]", "x[", "[1-2]",
		"a[0-99998],a[0-99998]", "a[1],a[1],a[1]", "a[0-9]b[0-9]c[0-9]d[0-9]e[0-9]", "n[000000001-3]",
		"model:rpi-b,model:pc-x86-64,rpi1", "model:", "model:a[1-2]", "model:model:x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// A slow input is slow every time; a pause of the machine is not:
		// the fastest of three tries counts.
		var terms []Term
		var err error
		fastest := time.Hour
		for range 3 {
			start := time.Now()
			terms, err = Parse(s)
			if fastest = min(fastest, time.Since(start)); fastest <= parseBudget(len(terms)) {
				break
			}
		}
		if fastest > parseBudget(len(terms)) {
			t.Fatalf("Parse(%.80q) took %s for %d terms, want at most %s", s, fastest, len(terms), parseBudget(len(terms)))
		}
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("Parse(%q) error %v does not wrap ErrSyntax", s, err)
			}
			return
		}
		if len(terms) == 0 || len(terms) > MaxNames {
			t.Fatalf("Parse(%q) = %d terms", s, len(terms))
		}
		seen := map[Term]bool{}
		for _, tm := range terms {
			if seen[tm] {
				t.Fatalf("Parse(%q): duplicate %v", s, tm)
			}
			seen[tm] = true
			switch {
			case tm.Model != "":
				if tm.Keyword != "" || tm.Name != "" || len(tm.Model) > MaxNameLen || strings.ContainsAny(tm.Model, ",[]: ") {
					t.Fatalf("Parse(%q): bad model term %+v", s, tm)
				}
			case tm.Keyword == "":
				if tm.Name == "" || len(tm.Name) > MaxNameLen || strings.ContainsAny(tm.Name, ",[] ") {
					t.Fatalf("Parse(%q): bad name %q", s, tm.Name)
				}
			}
		}
	})
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   []string
		want string
	}{
		{nil, "no nodes"},
		{[]string{"rpi1"}, "node rpi1"},
		{[]string{"vnode3", "rpi2", "rpi1"}, "nodes rpi1, rpi2 and vnode3"},
		{[]string{"a", "b", "c", "d", "e"}, "nodes a, b, c, d and e"},
		{[]string{"a", "b", "c", "d", "e", "f"}, "6 nodes"},
	}
	for _, c := range cases {
		if got := Describe(c.in, "node", "nodes"); got != c.want {
			t.Errorf("Describe(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := Capitalize("nodes a"); got != "Nodes a" {
		t.Errorf("Capitalize = %q", got)
	}
}
