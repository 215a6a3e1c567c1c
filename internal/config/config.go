// Package config reads walt's TOML configuration files and fills a
// command's flags from them and from the environment, with the precedence
// flag > environment (WALT_<FLAG>) > file > default. Files are flat: one
// "key = value" per flag, no [tables]. Every refusal names its source: the
// flag, the environment variable, or the file, line and key.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// MaxFile bounds the size of a configuration file.
const MaxFile = 1 << 20

// Setting is one key of a file: its value as flag text and its line.
type Setting struct {
	Value string
	Line  int
}

// Parse reads the TOML document data, named name in errors, whose keys
// must satisfy known. Values are strings, integers, floats or booleans,
// returned as the text a flag takes; durations are strings ("30s").
func Parse(name string, data []byte, known func(key string) bool) (map[string]Setting, error) {
	if len(data) > MaxFile {
		return nil, fmt.Errorf("%s: over %d bytes", name, MaxFile)
	}
	var values map[string]any
	if err := toml.Unmarshal(data, &values); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			line, _ := de.Position()
			return nil, fmt.Errorf("%s:%d: %s", name, line, de.Error())
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	out := make(map[string]Setting, len(values))
	var p unstable.Parser
	p.Reset(data)
	for p.NextExpression() {
		e := p.Expression()
		line := p.Shape(e.Raw).Start.Line
		switch e.Kind {
		case unstable.KeyValue:
		case unstable.Table, unstable.ArrayTable:
			return nil, fmt.Errorf("%s:%d: [tables] are not settings: put every key at the top", name, line)
		default:
			continue // a comment
		}
		keys := e.Key()
		keys.Next()
		key := string(keys.Node().Data)
		if !keys.IsLast() {
			return nil, fmt.Errorf("%s:%d: dotted key %s: settings are plain keys", name, line, Quote(key))
		}
		if !known(key) {
			return nil, fmt.Errorf("%s:%d: unknown setting %s", name, line, Quote(key))
		}
		var s string
		switch v := values[key].(type) {
		case string:
			s = v
		case int64:
			s = strconv.FormatInt(v, 10)
		case float64:
			s = strconv.FormatFloat(v, 'g', -1, 64)
		case bool:
			s = strconv.FormatBool(v)
		default:
			return nil, fmt.Errorf("%s:%d: %s: want a string, number or boolean", name, line, Quote(key))
		}
		out[key] = Setting{Value: s, Line: line}
	}
	if err := p.Error(); err != nil { // cannot happen after Unmarshal
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// Read reads and parses the file at path; a missing file is no error (and
// no setting) unless required.
func Read(path string, required bool, known func(string) bool) (map[string]Setting, error) {
	f, err := os.Open(path)
	if err != nil {
		if !required && errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("configuration file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFile+1))
	if err != nil {
		return nil, fmt.Errorf("configuration file %s: %w", path, err)
	}
	return Parse(path, data, known)
}

// EnvName is the environment variable of a flag: WALT_ and the name in
// capitals, dashes as underscores (reply-timeout: WALT_REPLY_TIMEOUT).
func EnvName(flagName string) string {
	return "WALT_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Sources tells where each flag's value came from.
type Sources struct {
	// File is the configuration file read, "" when there was none.
	File string
	from map[string]string
}

// Name names the source of flag's value for an error message: the file,
// line and key ("/etc/walt/server.conf:3: fanout"), the environment
// variable, or the flag ("--fanout") when set on the command line or left
// at its default.
func (s Sources) Name(flagName string) string {
	if n, ok := s.from[flagName]; ok {
		return n
	}
	return "--" + flagName
}

// Loader fills the flags of a parsed FlagSet.
type Loader struct {
	// Default is the file read when none is chosen, if it exists.
	Default string
	// Getenv reads the environment.
	Getenv func(string) string
	// Skip tells the flags that are no settings (e.g. config, version).
	Skip func(flagName string) bool
}

// Fill gives each flag of fs not set on the command line its value from
// the environment or, failing that, from the file at path (the Default
// when path is empty; then it may be missing). The file is read and
// checked whole, and every value set, before Fill returns the errors.
func (l Loader) Fill(fs *flag.FlagSet, path string) (*Sources, error) {
	required := path != ""
	if !required {
		path = l.Default
	}
	setting := func(name string) bool { return fs.Lookup(name) != nil && !l.Skip(name) }
	file, err := Read(path, required, setting)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	src := &Sources{from: map[string]string{}}
	if file != nil {
		src.File = path
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || l.Skip(f.Name) {
			return
		}
		env := EnvName(f.Name)
		if v := l.Getenv(env); v != "" {
			src.from[f.Name] = env
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%s: %w", env, Quote(v), setError(f, err)))
			}
		} else if s, ok := file[f.Name]; ok {
			src.from[f.Name] = fmt.Sprintf("%s:%d: %s", path, s.Line, f.Name)
			if err := fs.Set(f.Name, s.Value); err != nil {
				errs = append(errs, fmt.Errorf("%s: %s: %w", src.from[f.Name], Quote(s.Value), setError(f, err)))
			}
		}
	})
	return src, errors.Join(errs...)
}

// setError says what flag f wants when its value v is refused with err:
// the flag package's own parse errors say only "parse error".
func setError(f *flag.Flag, err error) error {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return err
	}
	switch g.Get().(type) {
	case time.Duration:
		return errors.New("want a duration such as 30s or 1m30s")
	case int, int64, uint, uint64:
		return errors.New("want a whole number")
	case bool:
		return errors.New("want true or false")
	}
	return err
}

// Quote quotes s for an error message, cut so that the quoted text stays
// within 64 bytes.
func Quote(s string) string {
	const max = 64
	q := strconv.Quote(s)
	if len(q) <= max {
		return q
	}
	// Cut s, not q, so that no escape is split.
	s = s[:max]
	for len(s) > 0 && len(strconv.Quote(s)) > max-3 {
		s = s[:len(s)-1]
	}
	return strconv.Quote(s) + "..."
}
