package vnode

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
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

// Set parses value for the setting key and stores it in s. On error s is
// unchanged. Unknown keys are refused with ErrInvalidSetting too; the server
// should check key names against its own table first.
func (s *Settings) Set(key, value string) error {
	switch key {
	case KeyCPUCores:
		n, err := strconv.Atoi(value)
		if err != nil || n < 1 || n > 255 || strings.TrimSpace(value) != value {
			return &SettingError{Key: key, Value: value,
				Message: fmt.Sprintf("'%s' is not a valid value for cpu.cores (expecting for instance 4).", value)}
		}
		s.CPUCores = n
	case KeyRAM:
		mib, ok := parseRAM(value)
		if !ok {
			return &SettingError{Key: key, Value: value,
				Message: fmt.Sprintf("'%s' is not a valid value for ram (expecting for instance 512M or 1G).", value)}
		}
		s.RAMMiB = mib
	case KeyBootDelay:
		if value == "random" {
			s.BootDelay = BootDelay{Random: true}
			return nil
		}
		n, err := strconv.Atoi(value)
		if err != nil || n < 0 || strings.HasPrefix(value, "+") {
			return &SettingError{Key: key, Value: value,
				Message: fmt.Sprintf("'%s' is not a valid value for option 'boot.delay'.", value),
				Hint:    "Use for example '2' for 2s, '0' to disable, 'random' for a random delay between 1 and 10s."}
		}
		s.BootDelay = BootDelay{Seconds: n}
	default:
		return &SettingError{Key: key, Value: value,
			Message: fmt.Sprintf("Unknown setting '%s'. See: 'walt help show device-config'", key)}
	}
	return nil
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
	if s.CPUCores < 1 || s.CPUCores > 255 {
		return &SettingError{Key: KeyCPUCores, Value: strconv.Itoa(s.CPUCores),
			Message: fmt.Sprintf("'%d' is not a valid value for cpu.cores (expecting for instance 4).", s.CPUCores)}
	}
	if s.RAMMiB < 1 || s.RAMMiB > maxRAMMiB {
		return &SettingError{Key: KeyRAM, Value: strconv.Itoa(s.RAMMiB) + "M",
			Message: fmt.Sprintf("'%dM' is not a valid value for ram (expecting for instance 512M or 1G).", s.RAMMiB)}
	}
	if !s.BootDelay.Random && s.BootDelay.Seconds < 0 {
		return &SettingError{Key: KeyBootDelay, Value: strconv.Itoa(s.BootDelay.Seconds),
			Message: fmt.Sprintf("'%d' is not a valid value for option 'boot.delay'.", s.BootDelay.Seconds),
			Hint:    "Use for example '2' for 2s, '0' to disable, 'random' for a random delay between 1 and 10s."}
	}
	return nil
}

const maxRAMMiB = 1 << 22 // 4 TiB, far above anything QEMU would be given here

// parseRAM accepts WalT's syntax: a positive integer followed by M or G.
func parseRAM(v string) (int, bool) {
	if len(v) < 2 {
		return 0, false
	}
	unit := 1
	switch v[len(v)-1] {
	case 'M':
	case 'G':
		unit = 1024
	default:
		return 0, false
	}
	digits := v[:len(v)-1]
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 1 || n > maxRAMMiB/unit {
		return 0, false
	}
	return n * unit, true
}
