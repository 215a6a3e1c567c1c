package lab

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// BootTime is a distribution of boot durations (docs/lab.md, "Boot
// times"): uniform between Min and Max (Dist "" or Uniform), normal of
// mean Mean and standard deviation SD, or log-normal of median Mean whose
// logarithm has standard deviation Sigma. Draws are kept within 0 to
// MaxBootTime.
type BootTime struct {
	Min, Max time.Duration
	Dist     string
	Mean, SD time.Duration
	Sigma    float64
}

// Boot time distributions.
const (
	Uniform   = "uniform"
	Normal    = "normal"
	LogNormal = "lognormal"
)

// Bounds of boot time distributions.
const (
	MaxBootTime     = time.Hour
	MaxSigma        = 3.0
	maxBootTimeSpec = 128
)

// ParseBootTime parses a boot time distribution: "2s" (fixed), "1s-3s" or
// "uniform:1s-3s" (uniform between the two), "normal:MEAN,SD" (normal,
// e.g. normal:600ms,80ms) or "lognormal:MEDIAN,SIGMA" (log-normal, e.g.
// lognormal:500ms,0.25). Durations are at most MaxBootTime, sigma at most
// MaxSigma.
func ParseBootTime(s string) (BootTime, error) {
	if len(s) > maxBootTimeSpec {
		return BootTime{}, fmt.Errorf("invalid boot time %.40q...: %d bytes, at most %d", s, len(s), maxBootTimeSpec)
	}
	dist, params, ok := strings.Cut(s, ":")
	if !ok {
		dist, params = "", s
	}
	var bt BootTime
	var err error
	switch dist {
	case "", Uniform:
		bt, err = parseUniform(params)
	case Normal:
		bt.Dist = Normal
		a, b, ok := strings.Cut(params, ",")
		if bt.Mean, err = parseBootDuration(a); err == nil && ok {
			bt.SD, err = parseBootDuration(b)
		} else if err == nil {
			err = fmt.Errorf("want normal:MEAN,SD")
		}
	case LogNormal:
		bt.Dist = LogNormal
		a, b, ok := strings.Cut(params, ",")
		if bt.Mean, err = parseBootDuration(a); err == nil && ok {
			bt.Sigma, err = strconv.ParseFloat(b, 64)
		} else if err == nil {
			err = fmt.Errorf("want lognormal:MEDIAN,SIGMA")
		}
	default:
		return BootTime{}, fmt.Errorf("invalid boot time %q: unknown distribution %q (want uniform, normal or lognormal)", s, dist)
	}
	if err == nil {
		err = bt.check()
	}
	if err != nil {
		return BootTime{}, fmt.Errorf("invalid boot time %q: %w (e.g. 2s, 1s-3s, normal:600ms,80ms, lognormal:500ms,0.25)", s, err)
	}
	return bt, nil
}

func parseUniform(s string) (BootTime, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	min, err := parseBootDuration(lo)
	if err != nil {
		return BootTime{}, err
	}
	max := min
	if isRange {
		if max, err = parseBootDuration(hi); err != nil {
			return BootTime{}, err
		}
	}
	return BootTime{Min: min, Max: max}, nil
}

func parseBootDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration", s)
	}
	return d, nil
}

// check checks the distribution's bounds.
func (b BootTime) check() error {
	in := func(what string, d time.Duration) error {
		if d < 0 || d > MaxBootTime {
			return fmt.Errorf("%s %v out of range (0 to %v)", what, d, MaxBootTime)
		}
		return nil
	}
	switch b.Dist {
	case "", Uniform:
		if err := in("minimum", b.Min); err != nil {
			return err
		}
		if err := in("maximum", b.Max); err != nil {
			return err
		}
		if b.Max < b.Min {
			return fmt.Errorf("range %v-%v: smallest first", b.Min, b.Max)
		}
	case Normal:
		if err := in("mean", b.Mean); err != nil {
			return err
		}
		return in("standard deviation", b.SD)
	case LogNormal:
		if err := in("median", b.Mean); err != nil {
			return err
		}
		if !(b.Sigma >= 0 && b.Sigma <= MaxSigma) {
			return fmt.Errorf("sigma %v out of range (0 to %v)", b.Sigma, MaxSigma)
		}
	default:
		return fmt.Errorf("unknown distribution %q", b.Dist)
	}
	return nil
}

// String is the distribution as ParseBootTime reads it.
func (b BootTime) String() string {
	switch b.Dist {
	case Normal:
		return fmt.Sprintf("normal:%v,%v", b.Mean, b.SD)
	case LogNormal:
		return fmt.Sprintf("lognormal:%v,%v", b.Mean, b.Sigma)
	}
	if b.Min == b.Max {
		return b.Min.String()
	}
	return fmt.Sprintf("%v-%v", b.Min, b.Max)
}

// Draw returns a boot duration drawn from the process's generator.
func (b BootTime) Draw() time.Duration { return b.drawWith(rand.Uint64, rand.NormFloat64) }

// Drawer returns a function drawing boot durations from a generator of its
// own, seeded with seed and stream: the same arguments give the same
// durations. It is not safe for concurrent use (a node calls it under its
// lock).
func (b BootTime) Drawer(seed, stream uint64) func() time.Duration {
	r := rand.New(rand.NewPCG(seed, stream))
	return func() time.Duration { return b.drawWith(r.Uint64, r.NormFloat64) }
}

func (b BootTime) drawWith(u func() uint64, norm func() float64) time.Duration {
	var d float64
	switch b.Dist {
	case Normal:
		d = float64(b.Mean) + float64(b.SD)*norm()
	case LogNormal:
		d = float64(b.Mean) * math.Exp(b.Sigma*norm())
	default:
		if b.Max <= b.Min {
			return b.Min
		}
		return b.Min + time.Duration(u()%uint64(b.Max-b.Min))
	}
	return time.Duration(min(max(d, 0), float64(MaxBootTime)))
}

// ParseNodeBootTime parses NAME=DISTRIBUTION (walt-lab --boot-time-dist):
// one node's boot time distribution.
func ParseNodeBootTime(s string) (string, BootTime, error) {
	name, spec, ok := strings.Cut(s, "=")
	if !ok || name == "" || len(name) > 64 {
		return "", BootTime{}, fmt.Errorf("invalid node boot time %.80q: want NODE=DISTRIBUTION, e.g. node03=normal:600ms,80ms", s)
	}
	bt, err := ParseBootTime(spec)
	if err != nil {
		return "", BootTime{}, fmt.Errorf("%s: %w", name, err)
	}
	return name, bt, nil
}
