package netservice

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestReadLine(t *testing.T) {
	long := strings.Repeat("x", MaxLineLength)
	tests := []struct {
		name  string
		in    string
		want  []string
		wantE error
	}{
		{"one line", "PING\n", []string{"PING"}, io.EOF},
		{"crlf", "PING\r\nCLOSE\r\n", []string{"PING", "CLOSE"}, io.EOF},
		{"empty line", "\n", []string{""}, io.EOF},
		{"longest line", long + "\n", []string{long}, io.EOF},
		{"longest line crlf", long + "\r\n", []string{long}, io.EOF},
		{"too long", long + "x\n", nil, ErrLineTooLong},
		{"too long without end", long + long, nil, ErrLineTooLong},
		{"no final newline", "PING", []string{"PING"}, io.ErrUnexpectedEOF},
		{"nothing", "", nil, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tt.in))
			var got []string
			var err error
			for {
				var line string
				line, err = ReadLine(r)
				if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
					break
				}
				got = append(got, line)
				if err != nil {
					break
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("lines of %.20q (-want +got):\n%s", tt.in, diff)
			}
			if !errors.Is(err, tt.wantE) {
				t.Errorf("last error of %.20q = %v, want %v", tt.in, err, tt.wantE)
			}
		})
	}
}

func TestParseRequest(t *testing.T) {
	tests := []struct {
		line    string
		want    Request
		wantErr error
	}{
		{"PING", Request{Verb: "PING"}, nil},
		{"MODE single", Request{Verb: "MODE", Args: []string{"single"}}, nil},
		{"  REBOOT\tkexec.allow=false   x=1 ", Request{Verb: "REBOOT", Args: []string{"kexec.allow=false", "x=1"}}, nil},
		{"   ", Request{}, nil},
		{"", Request{}, nil},
		{"PI\x00NG", Request{}, ErrMalformed},
		{"PING\x7f", Request{}, ErrMalformed},
		{"BL\xc3\xa9NK", Request{}, ErrMalformed},
		{"\x1b[2J", Request{}, ErrMalformed},
	}
	for _, tt := range tests {
		got, err := ParseRequest(tt.line)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("ParseRequest(%q) error = %v, want %v", tt.line, err, tt.wantErr)
		}
		if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("ParseRequest(%q) (-want +got):\n%s", tt.line, diff)
		}
	}
}

func TestRequestStringRoundTrip(t *testing.T) {
	for _, line := range []string{"PING", "REBOOT kexec.allow=false", "BLINK 1"} {
		r, err := ParseRequest(line)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.String(); got != line {
			t.Errorf("ParseRequest(%q).String() = %q", line, got)
		}
		if got := string(r.appendLine([]byte("x"))); got != "x"+line+"\n" {
			t.Errorf("ParseRequest(%q).appendLine(x) = %q, want %q", line, got, "x"+line+"\n")
		}
	}
}

// FuzzParseRequest checks that any bytes either parse into printable words
// that format back to the same words, or are rejected as malformed.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{"MODE single", "REBOOT kexec.allow=false", "\x00", "  \t ", "PING\r", strings.Repeat("A ", 100)} {
		f.Add([]byte(s + "\n"))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(strings.NewReader(string(data)))
		for {
			line, err := ReadLine(r)
			if errors.Is(err, ErrLineTooLong) || errors.Is(err, io.EOF) {
				return
			}
			if len(line) > MaxLineLength || strings.Contains(line, "\n") {
				t.Fatalf("ReadLine returned %d bytes with a newline or over the limit", len(line))
			}
			req, perr := ParseRequest(line)
			if perr != nil {
				if !errors.Is(perr, ErrMalformed) {
					t.Fatalf("ParseRequest(%q) = %v, not ErrMalformed", line, perr)
				}
			} else {
				again, err2 := ParseRequest(req.String())
				if err2 != nil || !cmp.Equal(req, again, cmpopts.EquateEmpty()) {
					t.Fatalf("ParseRequest(%q) = %#v, reparsed as %#v (%v)", line, req, again, err2)
				}
				for _, w := range append([]string{req.Verb}, req.Args...) {
					if strings.ContainsAny(w, " \t\r\n") {
						t.Fatalf("word %q of %q holds a separator", w, line)
					}
				}
			}
			if err != nil {
				return
			}
		}
	})
}
