package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// escape returns s fit for a terminal: every character a terminal could
// act on (C0 and C1 controls, DEL, other non-printable runes such as
// bidirectional overrides) and every byte of invalid UTF-8 written as a Go
// escape (\x1b, \n, \u202e, \xff), as strconv.Quote does but without the
// quotes and leaving printable text, backslashes and quotes alone. Names,
// models, reasons and log lines come from nodes, switches and the server:
// printed raw, `KO \x1b[2J` would clear the user's screen.
func escape(s string) string { return escapeKeep(s, false) }

// escapeLines is escape keeping line breaks, for the server's error
// messages, some of which have several lines.
func escapeLines(s string) string { return escapeKeep(s, true) }

func escapeKeep(s string, lines bool) string {
	i := 0
	for i < len(s) && (s[i] >= 0x20 && s[i] < 0x7f || lines && s[i] == '\n') {
		i++
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n' && lines:
			b.WriteByte('\n')
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case strconv.IsPrint(r):
			b.WriteString(s[i : i+size])
		case r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x10000:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
		i += size
	}
	return b.String()
}

// printf is fmt.Fprintf for text from outside: string, []string and error
// arguments are escaped (errors keep their line breaks); the format, ours,
// is written as it is.
func printf(w io.Writer, format string, args ...any) (int, error) {
	safe := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case string:
			safe[i] = escape(v)
		case []string:
			out := make([]string, len(v))
			for j, s := range v {
				out[j] = escape(s)
			}
			safe[i] = out
		case error:
			safe[i] = escapeLines(v.Error())
		default:
			safe[i] = a
		}
	}
	return fmt.Fprintf(w, format, safe...)
}
