package vnode

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/walt-testbed/walt/internal/bound"
)

// Setting names, as users type them in "walt node config NODE key=value".
const (
	KeyCPUCores  = "cpu.cores"
	KeyRAM       = "ram"
	KeyBootDelay = "boot.delay"
)

// Settings are the VM settings of one vnode. They apply at the next start of
// its VM: changing them never touches a running VM.
type Settings struct {
	CPUCores  int       // virtual CPUs; WalT's default is 4
	RAMMiB    int       // memory in MiB; "512M" is 512, "1G" is 1024
	BootDelay BootDelay // wait before each automatic start
}

// BootDelay is WalT's boot.delay: a whole number of seconds, or Random (1 to
// 10 s, drawn again before each start).
type BootDelay struct {
	Random  bool
	Seconds int
}

// DefaultSettings returns WalT's defaults: cpu.cores=4, ram=512M,
// boot.delay=random.
func DefaultSettings() Settings {
	return Settings{CPUCores: 4, RAMMiB: 512, BootDelay: BootDelay{Random: true}}
}

// ErrInvalidSetting is matched by every *SettingError.
var ErrInvalidSetting = errors.New("invalid vnode setting")

// SettingError says which value of which setting was refused. Its message is
// WalT's, without the leading "Failed: " that the CLI adds; Hint, when not
// empty, is the second line WalT prints (indented by 8 spaces).
type SettingError struct {
	Key, Value string
	Message    string
	Hint       string
}

func (e *SettingError) Error() string {
	if e.Hint == "" {
		return e.Message
	}
	return e.Message + "\n        " + e.Hint
}

func (e *SettingError) Is(target error) bool { return target == ErrInvalidSetting }

// Keys lists the settings Set accepts.
func Keys() []string { return []string{KeyBootDelay, KeyCPUCores, KeyRAM} }

// Bounds of the settings. WalT refuses what is not a number or below the
// minimum, with its own messages; the maxima are ours, so that no count or
// delay overflows.
var (
	cpuCoresRange  = bound.Int{Name: KeyCPUCores, Min: 1, Max: 255}
	bootDelayRange = bound.Int{Name: KeyBootDelay, Min: 0, Max: 3600, Suffix: "s"}
)

// Set parses value for the setting key and stores it in s. On error s is
// unchanged. Unknown keys are refused with ErrInvalidSetting too; the server
// should check key names against its own table first.
func (s *Settings) Set(key, value string) error {
	switch key {
	case KeyCPUCores:
		n, err := cpuCoresRange.Parse(value)
		if err != nil {
			return settingError(key, value, err)
		}
		s.CPUCores = int(n)
	case KeyRAM:
		mib, err := parseRAM(value)
		if err != nil {
			return settingError(key, value, err)
		}
		s.RAMMiB = mib
	case KeyBootDelay:
		if value == "random" {
			s.BootDelay = BootDelay{Random: true}
			return nil
		}
		n, err := bootDelayRange.Parse(value)
		if err != nil {
			return settingError(key, value, err)
		}
		s.BootDelay = BootDelay{Seconds: int(n)}
	default:
		return &SettingError{Key: key, Value: value,
			Message: fmt.Sprintf("Unknown setting '%s'. See: 'walt help show device-config'", key)}
	}
	return nil
}

// settingError is WalT's message for a value WalT refuses too (not a
// number, below the minimum), else the bound's, which names the range.
func settingError(key, value string, err error) *SettingError {
	e := &SettingError{Key: key, Value: value, Message: err.Error()}
	if !errors.Is(err, bound.ErrNotNumber) && !bound.Below(err) {
		return e
	}
	switch key {
	case KeyCPUCores:
		e.Message = fmt.Sprintf("'%s' is not a valid value for cpu.cores (expecting for instance 4).", value)
	case KeyRAM:
		e.Message = fmt.Sprintf("'%s' is not a valid value for ram (expecting for instance 512M or 1G).", value)
	case KeyBootDelay:
		e.Message = fmt.Sprintf("'%s' is not a valid value for option 'boot.delay'.", value)
		e.Hint = "Use for example '2' for 2s, '0' to disable, 'random' for a random delay between 1 and 10s."
	}
	return e
}

// Get returns the setting key formatted as Set accepts it ("4", "512M",
// "random"), and false for an unknown key.
func (s Settings) Get(key string) (string, bool) {
	switch key {
	case KeyCPUCores:
		return strconv.Itoa(s.CPUCores), true
	case KeyRAM:
		if s.RAMMiB%1024 == 0 {
			return strconv.Itoa(s.RAMMiB/1024) + "G", true
		}
		return strconv.Itoa(s.RAMMiB) + "M", true
	case KeyBootDelay:
		return s.BootDelay.String(), true
	}
	return "", false
}

func (d BootDelay) String() string {
	if d.Random {
		return "random"
	}
	return strconv.Itoa(d.Seconds)
}

// Duration returns the delay to wait now: Seconds, or 1 to 10 s at random.
func (d BootDelay) Duration() time.Duration {
	if d.Random {
		return time.Duration(1+rand.IntN(10)) * time.Second
	}
	return time.Duration(d.Seconds) * time.Second
}

// validate checks a Settings built in Go rather than through Set.
func (s Settings) validate() error {
	if err := cpuCoresRange.Check(int64(s.CPUCores)); err != nil {
		return settingError(KeyCPUCores, strconv.Itoa(s.CPUCores), err)
	}
	if err := ramRange("M", 1).Check(int64(s.RAMMiB)); err != nil {
		return settingError(KeyRAM, strconv.Itoa(s.RAMMiB)+"M", err)
	}
	if !s.BootDelay.Random {
		if err := bootDelayRange.Check(int64(s.BootDelay.Seconds)); err != nil {
			return settingError(KeyBootDelay, strconv.Itoa(s.BootDelay.Seconds), err)
		}
	}
	return nil
}

const maxRAMMiB = 1 << 22 // 4 TiB, far above anything QEMU would be given here

// ramRange is the range of ram in unit (M or G, of mib MiB).
func ramRange(unit string, mib int64) bound.Int {
	return bound.Int{Name: KeyRAM, Min: 1, Max: maxRAMMiB / mib, Suffix: unit}
}

// parseRAM accepts WalT's syntax: a positive integer followed by M or G.
func parseRAM(v string) (int, error) {
	if len(v) < 2 || v[len(v)-1] != 'M' && v[len(v)-1] != 'G' || v[0] == '-' {
		return 0, fmt.Errorf("%s: %w: %q", KeyRAM, bound.ErrNotNumber, v)
	}
	unit, mib := v[len(v)-1:], int64(1)
	if unit == "G" {
		mib = 1024
	}
	n, err := ramRange(unit, mib).Parse(v[:len(v)-1])
	if e := (*bound.Error)(nil); errors.As(err, &e) {
		e.Got += unit
	}
	if err != nil {
		return 0, err
	}
	return int(n * mib), nil
}
