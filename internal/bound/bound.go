// Package bound checks the numbers that users type and requests carry
// against documented ranges, before they become counts or durations that
// could overflow. Every refusal names the value, its range and what was
// given: "boot.timeout: must be between 60s and 86400s (got 10000000000)".
package bound

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ErrOutOfRange is matched by every *Error.
var ErrOutOfRange = errors.New("out of range")

// ErrNotNumber is wrapped by the errors of text that is not a number.
// Callers with their own message for bad syntax (WalT's) test for it.
var ErrNotNumber = errors.New("not a number")

// maxGot is the most bytes of a refused value an error repeats.
const maxGot = 32

// Error is a value outside its range.
type Error struct {
	Name     string // what the value is: "boot.timeout", "--timeout"
	Min, Max string // the bounds, formatted
	Got      string // the value as given, cut if long
	Low      bool   // below Min
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: must be between %s and %s (got %s)", e.Name, e.Min, e.Max, e.Got)
}

// Is makes errors.Is(err, ErrOutOfRange) true.
func (e *Error) Is(target error) bool { return target == ErrOutOfRange }

// Below reports whether err is an *Error for a value below its minimum.
func Below(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Low
}

// cut shortens a refused value for an error message.
func cut(s string) string {
	if len(s) <= maxGot {
		return s
	}
	return fmt.Sprintf("%s... (%d characters)", s[:maxGot], len(s))
}

// Int is the inclusive range of a named whole number. Suffix follows each
// bound in errors: "s" for seconds gives "between 60s and 86400s".
type Int struct {
	Name     string
	Min, Max int64
	Suffix   string
}

// Parse parses s, decimal digits with an optional leading '-', and checks
// it. A number beyond int64 is out of range, not a syntax error.
func (r Int) Parse(s string) (int64, error) {
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, fmt.Errorf("%s: %w: %q", r.Name, ErrNotNumber, cut(s))
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil { // only ErrRange is left
		return 0, r.err(cut(s), s[0] == '-')
	}
	if n < r.Min || n > r.Max {
		return 0, r.err(cut(s), n < r.Min)
	}
	return n, nil
}

// Check checks n.
func (r Int) Check(n int64) error {
	if n < r.Min || n > r.Max {
		return r.err(strconv.FormatInt(n, 10), n < r.Min)
	}
	return nil
}

func (r Int) err(got string, low bool) error {
	return &Error{Name: r.Name, Min: strconv.FormatInt(r.Min, 10) + r.Suffix, Max: strconv.FormatInt(r.Max, 10) + r.Suffix, Got: got, Low: low}
}

// Duration is the inclusive range of a named duration.
type Duration struct {
	Name     string
	Min, Max time.Duration
}

// Check checks d.
func (r Duration) Check(d time.Duration) error {
	if d < r.Min || d > r.Max {
		return r.err(Format(d), d < r.Min)
	}
	return nil
}

// Parse parses s, a Go duration ("1500ms", "2s") or a decimal number of
// seconds ("1.5"), and checks it. Values beyond what a time.Duration holds,
// NaN and infinities are out of range or refused, never wrapped.
func (r Duration) Parse(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		secs, ferr := strconv.ParseFloat(s, 64)
		switch {
		case ferr != nil && !errors.Is(ferr, strconv.ErrRange), math.IsNaN(secs):
			return 0, fmt.Errorf("%s: %w: %q", r.Name, ErrNotNumber, cut(s))
		case secs*float64(time.Second) < float64(r.Min) || secs*float64(time.Second) > float64(r.Max):
			return 0, r.err(cut(s), secs*float64(time.Second) < float64(r.Min))
		}
		d = time.Duration(secs * float64(time.Second))
	}
	if d < r.Min || d > r.Max {
		return 0, r.err(cut(s), d < r.Min)
	}
	return d, nil
}

func (r Duration) err(got string, low bool) error {
	return &Error{Name: r.Name, Min: Format(r.Min), Max: Format(r.Max), Got: got, Low: low}
}

// Format writes d without the zero units time.Duration.String keeps:
// "24h" for 24h0m0s, "1m" for 1m0s, "1h30m" for 1h30m0s.
func Format(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
