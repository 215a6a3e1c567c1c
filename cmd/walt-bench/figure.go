package main

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A Figure is one line of walt-bench's output: a name, then key=value
// fields, separated by single spaces:
//
//	soft-reboot nodes=1000 dead_pct=0 wall_ms=95.2 ok=1000
//
// Names are lower-case words joined by '-', keys by '_'; values are
// numbers or words without spaces.
type Figure struct {
	Name   string
	Fields []Field
}

// Field is one key=value of a Figure.
type Field struct{ Key, Value string }

// figure starts a Figure; add fields with Int, Float, Ms and Str.
func figure(name string) *Figure { return &Figure{Name: name} }

func (f *Figure) Str(key, v string) *Figure {
	f.Fields = append(f.Fields, Field{key, v})
	return f
}

func (f *Figure) Int(key string, v int) *Figure { return f.Str(key, strconv.Itoa(v)) }

// Float adds v with at most the given decimals, trailing zeros dropped.
func (f *Figure) Float(key string, v float64, decimals int) *Figure {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return f.Str(key, "NaN")
	}
	s := strconv.FormatFloat(v, 'f', decimals, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return f.Str(key, s)
}

// Ms adds a duration in milliseconds, to the tenth.
func (f *Figure) Ms(key string, d time.Duration) *Figure {
	return f.Float(key, float64(d)/float64(time.Millisecond), 1)
}

// String formats the figure as its output line.
func (f Figure) String() string {
	var b strings.Builder
	b.WriteString(f.Name)
	for _, kv := range f.Fields {
		fmt.Fprintf(&b, " %s=%s", kv.Key, kv.Value)
	}
	return b.String()
}

// Value returns the value of key, and whether the figure has it.
func (f Figure) Value(key string) (string, bool) {
	for _, kv := range f.Fields {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return "", false
}

// ParseFigure parses one output line, checking the format String writes.
func ParseFigure(line string) (Figure, error) {
	words := strings.Split(line, " ")
	if !isWord(words[0], '-') {
		return Figure{}, fmt.Errorf("figure %q: name %q: want lower-case words joined by '-'", line, words[0])
	}
	f := Figure{Name: words[0]}
	if len(words) == 1 {
		return Figure{}, fmt.Errorf("figure %q: no key=value field", line)
	}
	for _, w := range words[1:] {
		k, v, ok := strings.Cut(w, "=")
		switch {
		case !ok || !isWord(k, '_'):
			return Figure{}, fmt.Errorf("figure %q: field %q: want key=value, key in lower case words joined by '_'", line, w)
		case v == "" || strings.ContainsAny(v, "=\t\n"):
			return Figure{}, fmt.Errorf("figure %q: field %q: empty value or one with '=' or blanks", line, w)
		case slices.ContainsFunc(f.Fields, func(kv Field) bool { return kv.Key == k }):
			return Figure{}, fmt.Errorf("figure %q: key %q given twice", line, k)
		}
		f.Fields = append(f.Fields, Field{k, v})
	}
	return f, nil
}

// isWord reports whether s is lower-case letters and digits in words
// joined by sep, starting with a letter.
func isWord(s string, sep byte) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' || s[len(s)-1] == sep {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == sep && s[i-1] != sep:
		default:
			return false
		}
	}
	return true
}
