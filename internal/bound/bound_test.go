package bound

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

var seconds = Int{Name: "boot.timeout", Min: 60, Max: 86400, Suffix: "s"}

func TestIntParse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want int64
		err  string // "" for none
		low  bool
	}{
		{"60", 60, "", false},
		{"86400", 86400, "", false},
		{"0086400", 86400, "", false},
		{"59", 0, "boot.timeout: must be between 60s and 86400s (got 59)", true},
		{"86401", 0, "boot.timeout: must be between 60s and 86400s (got 86401)", false},
		{"10000000000", 0, "boot.timeout: must be between 60s and 86400s (got 10000000000)", false},
		{"18446744074", 0, "boot.timeout: must be between 60s and 86400s (got 18446744074)", false},
		{"9223372036854775807", 0, "boot.timeout: must be between 60s and 86400s (got 9223372036854775807)", false},
		{"99999999999999999999", 0, "boot.timeout: must be between 60s and 86400s (got 99999999999999999999)", false},
		{"-99999999999999999999", 0, "boot.timeout: must be between 60s and 86400s (got -99999999999999999999)", true},
		{strings.Repeat("9", 100), 0, "boot.timeout: must be between 60s and 86400s (got 99999999999999999999999999999999... (100 characters))", false},
		{"", 0, `boot.timeout: not a number: ""`, false},
		{"-", 0, `boot.timeout: not a number: "-"`, false},
		{"+70", 0, `boot.timeout: not a number: "+70"`, false},
		{" 70", 0, `boot.timeout: not a number: " 70"`, false},
		{"7e2", 0, `boot.timeout: not a number: "7e2"`, false},
		{"0x100", 0, `boot.timeout: not a number: "0x100"`, false},
	}
	for _, c := range cases {
		got, err := seconds.Parse(c.in)
		if c.err == "" {
			if err != nil || got != c.want {
				t.Errorf("Parse(%q) = %d, %v; want %d", c.in, got, err, c.want)
			}
			continue
		}
		if err == nil || err.Error() != c.err {
			t.Errorf("Parse(%q) = %d, %v; want error %q", c.in, got, err, c.err)
			continue
		}
		if strings.Contains(c.err, "between") != errors.Is(err, ErrOutOfRange) || strings.Contains(c.err, "not a number") != errors.Is(err, ErrNotNumber) {
			t.Errorf("Parse(%q) = %v: wrong error kind", c.in, err)
		}
		if Below(err) != c.low {
			t.Errorf("Below(Parse(%q)) = %v, want %v", c.in, Below(err), c.low)
		}
	}
	if err := (Int{Name: "port", Min: 1, Max: 4096}).Check(4097); err == nil || err.Error() != "port: must be between 1 and 4096 (got 4097)" {
		t.Errorf("Check(4097) = %v", err)
	}
}

func TestDurationParse(t *testing.T) {
	t.Parallel()
	r := Duration{Name: "poe.delay", Min: 100 * time.Millisecond, Max: time.Minute}
	cases := map[string]string{ // input: result or error
		"2s":                 "2s",
		"1500ms":             "1.5s",
		"3":                  "3s",
		"0.1":                "100ms",
		"1m":                 "1m0s",
		"1h":                 "poe.delay: must be between 100ms and 1m (got 1h)",
		"61":                 "poe.delay: must be between 100ms and 1m (got 61)",
		"0":                  "poe.delay: must be between 100ms and 1m (got 0)",
		"-5s":                "poe.delay: must be between 100ms and 1m (got -5s)",
		"1e300":              "poe.delay: must be between 100ms and 1m (got 1e300)",
		"1e400":              "poe.delay: must be between 100ms and 1m (got 1e400)",
		"-1e400":             "poe.delay: must be between 100ms and 1m (got -1e400)",
		"Inf":                "poe.delay: must be between 100ms and 1m (got Inf)",
		"-Inf":               "poe.delay: must be between 100ms and 1m (got -Inf)",
		"NaN":                `poe.delay: not a number: "NaN"`,
		"soon":               `poe.delay: not a number: "soon"`,
		"9.3e9":              "poe.delay: must be between 100ms and 1m (got 9.3e9)",
		"18446744073.709552": "poe.delay: must be between 100ms and 1m (got 18446744073.709552)",
	}
	for in, want := range cases {
		d, err := r.Parse(in)
		got := d.String()
		if err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("Parse(%q) = %s, want %s", in, got, want)
		}
	}
	if err := (Duration{Name: "timeout", Max: 24 * time.Hour}).Check(time.Duration(1<<63 - 1)); err == nil || err.Error() != "timeout: must be between 0s and 24h (got 2562047h47m16.854775807s)" {
		t.Errorf("Check(max) = %v", err)
	}
}

func TestFormat(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{0: "0s", 24 * time.Hour: "24h", time.Minute: "1m", 90 * time.Minute: "1h30m",
		100 * time.Millisecond: "100ms", 61 * time.Second: "1m1s", time.Hour + time.Second: "1h0m1s"} {
		if got := Format(d); got != want {
			t.Errorf("Format(%v) = %q, want %q", d, got, want)
		}
	}
}

// FuzzInt: Parse never panics, accepts only numbers within the range that
// read back as given, and refuses the others with a short error.
func FuzzInt(f *testing.F) {
	for _, s := range []string{"60", "-1", "9223372036854775807", "18446744074", "", "+1", "007", "1e3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := seconds.Parse(s)
		if err != nil {
			if !errors.Is(err, ErrOutOfRange) && !errors.Is(err, ErrNotNumber) || len(err.Error()) > 200 {
				t.Fatalf("Parse(%q) = %v", s, err)
			}
			return
		}
		if n < seconds.Min || n > seconds.Max {
			t.Fatalf("Parse(%q) = %d, out of range", s, n)
		}
		if back, _ := strconv.ParseInt(s, 10, 64); back != n {
			t.Fatalf("Parse(%q) = %d, reads back as %d", s, n, back)
		}
	})
}

// FuzzDuration: Parse never panics and never returns a duration outside
// its range.
func FuzzDuration(f *testing.F) {
	for _, s := range []string{"2s", "1e300", "NaN", "-0", "9223372036.854775807", "1h", "0x1p-3"} {
		f.Add(s)
	}
	r := Duration{Name: "poe.delay", Min: 100 * time.Millisecond, Max: time.Minute}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := r.Parse(s)
		if err != nil {
			if !errors.Is(err, ErrOutOfRange) && !errors.Is(err, ErrNotNumber) || len(err.Error()) > 200 {
				t.Fatalf("Parse(%q) = %v", s, err)
			}
			return
		}
		if d < r.Min || d > r.Max {
			t.Fatalf("Parse(%q) = %s, out of range", s, d)
		}
	})
}
