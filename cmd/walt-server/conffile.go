package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// confHeader opens the configuration file --print-config writes.
const confHeader = `# walt-server's configuration file (docs/server.md), read at start when it
# exists. TOML, one "key = value" a line, keys being walt-server's flags;
# strings and durations quoted ("30s"), numbers and true/false bare. A flag
# on the command line wins over WALT_<FLAG> in the environment, which wins
# over this file, which wins over the default.
#
# Every setting is here, commented out at its default: uncomment a line
# to change it. A db URL with a password makes this file a secret: keep it
# readable by root and the server's user only (chmod 640, group walt).
#
# Written by "walt-server --print-config", from the flags themselves.
`

// confDefaults gives the default to write for a setting whose default
// depends on who runs walt-server: the file would otherwise say what it is
// for whoever wrote it (the packager's home directory).
var confDefaults = map[string]struct{ value, note string }{
	"data": {"/var/lib/walt", "Default: /var/lib/walt for root, else $XDG_DATA_HOME/walt or ~/.local/share/walt. " +
		"walt-server.service gives --data /var/lib/walt, which wins over this file."},
}

// writeConfFile writes the configuration file of fs's settings (the flags
// isSetting tells), in the order --help lists them: for each, its usage
// and its default as a commented-out "key = value" line.
func writeConfFile(w io.Writer, fs *flag.FlagSet) error {
	var b strings.Builder
	b.WriteString(confHeader)
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if !isSetting(f.Name) || err != nil {
			return
		}
		_, usage := flag.UnquoteUsage(f)
		value := f.DefValue
		if d, ok := confDefaults[f.Name]; ok {
			value, usage = d.value, usage+". "+d.note
		}
		var v string
		if v, err = tomlValue(f, value); err != nil {
			return
		}
		b.WriteString("\n")
		writeComment(&b, usage)
		fmt.Fprintf(&b, "#%s = %s\n", f.Name, v)
	})
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, b.String())
	return err
}

// tomlValue spells the flag value s as TOML: numbers and booleans bare,
// everything else (durations included) a string.
func tomlValue(f *flag.Flag, s string) (string, error) {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return "", fmt.Errorf("flag %s: no typed value", f.Name)
	}
	switch g.Get().(type) {
	case bool, int, int64, uint, uint64, float64:
		return s, nil
	case time.Duration, string:
		// A Go quoted string is a TOML basic string for printable ASCII,
		// all our defaults are.
		for _, c := range s {
			if c < 0x20 || c > 0x7e {
				return "", fmt.Errorf("flag %s: default %q: not printable ASCII", f.Name, s)
			}
		}
		return strconv.Quote(s), nil
	}
	return "", fmt.Errorf("flag %s: a %T cannot be written to the file", f.Name, g.Get())
}

// writeComment writes text as comment lines of at most 78 columns.
func writeComment(b *strings.Builder, text string) {
	const width = 78
	line := "#"
	for _, word := range strings.Fields(text) {
		if len(line)+1+len(word) > width && line != "#" {
			b.WriteString(line + "\n")
			line = "#"
		}
		line += " " + word
	}
	b.WriteString(line + "\n")
}
