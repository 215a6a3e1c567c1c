// Package experiment is the experiment's side of a boot (docs/node-agent.md,
// "The experiment's side: boot context and done"): the rules of a done
// report, which walt-server, walt-node and walt-lab check alike, and the
// boot context files walt-node writes under /run/walt/ for the experiment.
// It depends on the api package only, so that walt-node stays small.
package experiment

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/walt-testbed/walt/api"
)

// MaxBootID bounds the boot id of a done report, as that of a boot report
// (docs/api.md, "Bounds").
const MaxBootID = 128

// FieldError is a refused field of a done report or a node method: Field
// names it (status, metrics.KEY, boot_id), Culprit is what to blame (the
// field, or the metric's key).
type FieldError struct {
	Field, Culprit, Msg string
}

func (e *FieldError) Error() string { return e.Msg }

func fieldErr(field, culprit, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Culprit: culprit, Msg: fmt.Sprintf(format, args...)}
}

// CheckStatus checks a done report's exit status: 0 to 255.
func CheckStatus(status int) error {
	if status < api.MinDoneStatus || status > api.MaxDoneStatus {
		return fieldErr("status", "status", "status: %d is out of range (%d to %d, an exit status)", status, api.MinDoneStatus, api.MaxDoneStatus)
	}
	return nil
}

// CheckMetricKey checks a metric's key: 1 to api.MaxMetricKey bytes of
// letters, digits, '.', '_' and '-'.
func CheckMetricKey(k string) error {
	if k == "" {
		return fieldErr("metrics", "metrics", "metrics: a key is empty (want 1 to %d letters, digits, '.', '_' or '-')", api.MaxMetricKey)
	}
	if len(k) > api.MaxMetricKey {
		return fieldErr("metrics", k[:api.MaxMetricKey], "metrics: key %.*q...: %d bytes, at most %d", api.MaxMetricKey, k, len(k), api.MaxMetricKey)
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; !(isAlnum(c) || c == '.' || c == '_' || c == '-') {
			return fieldErr("metrics", k, "metrics: key %q: byte %q at %d not allowed (letters, digits, '.', '_' and '-' only)", k, c, i)
		}
	}
	return nil
}

// CheckMetricValue checks a metric's value: a finite number.
func CheckMetricValue(k string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fieldErr("metrics."+k, k, "metrics.%s: %v is not a finite number", k, v)
	}
	return nil
}

// CheckMetrics checks a done report's metrics whole: at most
// api.MaxDoneMetrics, keys by CheckMetricKey, values finite. Keys are
// checked in order, so the culprit named is always the same.
func CheckMetrics(m map[string]float64) error {
	if len(m) > api.MaxDoneMetrics {
		return fieldErr("metrics", "metrics", "metrics: %d given, at most %d", len(m), api.MaxDoneMetrics)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := CheckMetricKey(k); err != nil {
			return err
		}
		if err := CheckMetricValue(k, m[k]); err != nil {
			return err
		}
	}
	return nil
}

// CheckBootID checks a done report's boot id: 1 to MaxBootID bytes of
// printable UTF-8, as the boot id of a boot report.
func CheckBootID(id string) error {
	if id == "" {
		return fieldErr("boot_id", "boot_id", "boot_id: empty (the boot whose experiment is done)")
	}
	if len(id) > MaxBootID {
		return fieldErr("boot_id", "boot_id", "boot_id: %d bytes, at most %d", len(id), MaxBootID)
	}
	for i, r := range id {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return fieldErr("boot_id", "boot_id", "boot_id: character %q at byte %d not allowed (printable UTF-8 text only)", r, i)
		}
	}
	return nil
}

// CheckDone checks a done report whole but its MAC, which the caller
// normalizes: boot id, status, metrics.
func CheckDone(r api.DoneReport) error {
	if err := CheckBootID(r.BootID); err != nil {
		return err
	}
	if err := CheckStatus(r.Status); err != nil {
		return err
	}
	return CheckMetrics(r.Metrics)
}

// CheckNodeMethod checks a boot report's node method: empty, or at most
// api.MaxNodeMethodLen bytes of letters, digits and '-'.
func CheckNodeMethod(m string) error {
	if len(m) > api.MaxNodeMethodLen {
		return fieldErr("node_method", "node_method", "node_method: %d bytes, at most %d", len(m), api.MaxNodeMethodLen)
	}
	for i := 0; i < len(m); i++ {
		if c := m[i]; !(isAlnum(c) || c == '-') {
			return fieldErr("node_method", "node_method", "node_method: byte %q at %d not allowed (letters, digits and '-' only)", c, i)
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// ParseMetric parses one KEY=VALUE metric, as walt-node done --metric and
// walt-lab --experiment take them: the key by CheckMetricKey, the value a
// finite decimal number (strconv.ParseFloat syntax, at most 64 bytes).
func ParseMetric(s string) (string, float64, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return "", 0, fmt.Errorf("metric %.80q: want KEY=VALUE, e.g. boot_s=12.5", s)
	}
	if err := CheckMetricKey(k); err != nil {
		return "", 0, err
	}
	const maxValue = 64
	if len(v) > maxValue {
		return "", 0, fmt.Errorf("metric %s: value of %d bytes, at most %d", k, len(v), maxValue)
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return "", 0, fmt.Errorf("metric %s: value %q is not a number", k, v)
	}
	if err := CheckMetricValue(k, f); err != nil {
		return "", 0, err
	}
	return k, f, nil
}

// ParseMetrics parses KEY=VALUE metrics into a map, refusing more than
// api.MaxDoneMetrics and a key given twice.
func ParseMetrics(items []string) (map[string]float64, error) {
	if len(items) > api.MaxDoneMetrics {
		return nil, fmt.Errorf("%d metrics given, at most %d", len(items), api.MaxDoneMetrics)
	}
	if len(items) == 0 {
		return nil, nil
	}
	out := make(map[string]float64, len(items))
	for _, it := range items {
		k, v, err := ParseMetric(it)
		if err != nil {
			return nil, err
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("metric %s given twice", k)
		}
		out[k] = v
	}
	return out, nil
}
