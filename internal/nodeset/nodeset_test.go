package nodeset

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
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
	}
	for in, want := range cases {
		_, err := Parse(in)
		if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want ErrSyntax mentioning %q", in, err, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"rpi[01-12]", "a,b,my-nodes", "r[1-2]n[3,5-6]", "x[", "[1-2]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		terms, err := Parse(s)
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
			if tm.Keyword == "" {
				if tm.Name == "" || strings.ContainsAny(tm.Name, ",[] ") {
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
