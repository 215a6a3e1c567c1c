// Package nodeset parses WalT device sets: comma-separated device names and
// keywords (my-nodes, free-nodes, all-nodes, all-switches, all-devices,
// explorable-switches, server), where a name may hold numeric ranges in
// brackets: rpi[01-12], node[1-3,7], r[1-2]n[1-4].
package nodeset

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Keywords of the set syntax.
const (
	MyNodes            = "my-nodes"
	FreeNodes          = "free-nodes"
	AllNodes           = "all-nodes"
	AllSwitches        = "all-switches"
	AllDevices         = "all-devices"
	ExplorableSwitches = "explorable-switches"
	Server             = "server"
)

var keywords = map[string]bool{
	MyNodes: true, FreeNodes: true, AllNodes: true, AllSwitches: true,
	AllDevices: true, ExplorableSwitches: true, Server: true,
}

// MaxNames bounds how many names one set may expand to.
const MaxNames = 100000

// ErrSyntax is wrapped by every parse error.
var ErrSyntax = errors.New("invalid device set")

// Term is one element of a parsed set: a keyword or a device name.
type Term struct {
	Keyword string
	Name    string
}

// String returns the term as written.
func (t Term) String() string {
	if t.Keyword != "" {
		return t.Keyword
	}
	return t.Name
}

// Parse parses a set and expands its ranges. Terms keep their order;
// duplicates are removed.
func Parse(set string) ([]Term, error) {
	if strings.TrimSpace(set) == "" {
		return nil, fmt.Errorf("%w: empty set (name devices, or use my-nodes, all-nodes...)", ErrSyntax)
	}
	items, err := split(set)
	if err != nil {
		return nil, err
	}
	var terms []Term
	seen := make(map[Term]bool)
	add := func(t Term) error {
		if seen[t] {
			return nil
		}
		if len(terms) >= MaxNames {
			return fmt.Errorf("%w %q: expands to more than %d names", ErrSyntax, set, MaxNames)
		}
		seen[t] = true
		terms = append(terms, t)
		return nil
	}
	for _, item := range items {
		if keywords[item] {
			if err := add(Term{Keyword: item}); err != nil {
				return nil, err
			}
			continue
		}
		names, err := expand(item, MaxNames)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			if err := add(Term{Name: n}); err != nil {
				return nil, err
			}
		}
	}
	return terms, nil
}

// split cuts set at the commas that are outside brackets.
func split(set string) ([]string, error) {
	var items []string
	depth, start := 0, 0
	for i := 0; i < len(set); i++ {
		switch set[i] {
		case '[':
			if depth > 0 {
				return nil, fmt.Errorf("%w %q: nested '[' at offset %d", ErrSyntax, set, i)
			}
			depth++
		case ']':
			if depth == 0 {
				return nil, fmt.Errorf("%w %q: ']' without '[' at offset %d", ErrSyntax, set, i)
			}
			depth--
		case ',':
			if depth == 0 {
				items = append(items, set[start:i])
				start = i + 1
			}
		}
	}
	if depth > 0 {
		return nil, fmt.Errorf("%w %q: '[' not closed", ErrSyntax, set)
	}
	items = append(items, set[start:])
	for _, it := range items {
		if it == "" {
			return nil, fmt.Errorf("%w %q: empty element (two commas in a row, or a comma at an end)", ErrSyntax, set)
		}
	}
	return items, nil
}

func validNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}

// expand expands the bracket groups of one item into at most limit names.
func expand(item string, limit int) ([]string, error) {
	open := strings.IndexByte(item, '[')
	if open < 0 {
		for i := 0; i < len(item); i++ {
			if !validNameByte(item[i]) {
				return nil, fmt.Errorf("%w: name %q: character %q not allowed", ErrSyntax, item, item[i])
			}
		}
		return []string{item}, nil
	}
	closeAt := open + strings.IndexByte(item[open:], ']')
	prefix, group, rest := item[:open], item[open+1:closeAt], item[closeAt+1:]
	if _, err := expand(prefix, 1); err != nil {
		return nil, err
	}
	nums, err := rangeList(item, group, limit)
	if err != nil {
		return nil, err
	}
	tails, err := expand(rest, limit)
	if err != nil {
		return nil, err
	}
	if len(nums)*len(tails) > limit {
		return nil, fmt.Errorf("%w: %q expands to more than %d names", ErrSyntax, item, limit)
	}
	var out []string
	for _, n := range nums {
		for _, t := range tails {
			out = append(out, prefix+n+t)
		}
	}
	return out, nil
}

// rangeList expands "01-03,7" into 01, 02, 03, 7. A bound written with a
// leading zero sets the width of every number of its range.
func rangeList(item, group string, limit int) ([]string, error) {
	if group == "" {
		return nil, fmt.Errorf("%w: %q: empty range []", ErrSyntax, item)
	}
	var out []string
	for _, part := range strings.Split(group, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		if !isRange {
			hi = lo
		}
		a, errA := parseNum(lo)
		b, errB := parseNum(hi)
		if errA != nil || errB != nil {
			return nil, fmt.Errorf("%w: %q: range %q: expected numbers such as [1-12] or [01-12,20]", ErrSyntax, item, part)
		}
		if a > b {
			return nil, fmt.Errorf("%w: %q: range %q goes down", ErrSyntax, item, part)
		}
		if b-a >= limit || len(out)+b-a >= limit {
			return nil, fmt.Errorf("%w: %q expands to more than %d names", ErrSyntax, item, limit)
		}
		width := 0
		if len(lo) > 1 && lo[0] == '0' {
			width = len(lo)
		}
		for n := a; n <= b; n++ {
			out = append(out, fmt.Sprintf("%0*d", width, n))
		}
	}
	return out, nil
}

func parseNum(s string) (int, error) {
	if s == "" || len(s) > 9 {
		return 0, strconv.ErrSyntax
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, strconv.ErrSyntax
		}
	}
	return strconv.Atoi(s)
}
