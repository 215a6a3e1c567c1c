// Package netservice implements WalT's node protocol, spoken on TCP port 12346
// between the server and the agent on each node: the line codec, the
// agent-side Server and the server-side Requester.
//
// The protocol is byte-compatible with the original WalT agent: ASCII lines
// ending in "\n", a session starting with "MODE single" or "MODE multi", then
// requests such as PING, REBOOT, BLINK, DMESG and CLOSE, each answered with a
// line starting with OK or KO. See docs/node-protocol.md.
package netservice

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

const (
	// Port is the TCP port of the node agent.
	Port = 12346
	// MaxLineLength is the longest line, without its "\n", either side accepts.
	MaxLineLength = 4096
	// LineTimeout is how long the agent waits for each request line.
	LineTimeout = 15 * time.Second
)

// Reply lines, byte for byte as WalT's agent writes them.
const (
	ReplyOK            = "OK"
	ReplyClosing       = "OK Closing on my side."
	ReplyTimeout       = "TIMEOUT Closing on my side."
	ReplyStartWithMode = `KO Start by specifying "MODE [single|multi]". Closing on my side.`
	ReplyEndOfShell    = "END-OF-SHELL"
	ReplyShellTimeout  = "SHELL-TIMEOUT"
)

// Request verbs.
const (
	VerbMode   = "MODE"
	VerbPing   = "PING"
	VerbReboot = "REBOOT"
	VerbBlink  = "BLINK"
	VerbDmesg  = "DMESG"
	VerbShell  = "SHELL"
	VerbClose  = "CLOSE"
)

var (
	// ErrLineTooLong is returned by ReadLine for a line over MaxLineLength bytes.
	ErrLineTooLong = fmt.Errorf("line too long (over %d bytes)", MaxLineLength)
	// ErrMalformed is returned by ParseRequest for a line that is not printable ASCII.
	ErrMalformed = errors.New("malformed request: not printable ASCII")
)

// NewReader returns a buffered reader sized so that ReadLine can see a whole
// line of MaxLineLength bytes plus its line ending.
func NewReader(r io.Reader) *bufio.Reader {
	return bufio.NewReaderSize(r, MaxLineLength+2)
}

// ReadLine reads one line from r, which should come from NewReader, and
// returns it without its "\n" nor a "\r" before it. A line longer than
// MaxLineLength gives ErrLineTooLong; the rest of that line stays unread.
// A final line without "\n" before EOF is returned with io.ErrUnexpectedEOF.
func ReadLine(r *bufio.Reader) (string, error) {
	b, err := r.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return "", ErrLineTooLong
	case errors.Is(err, io.EOF) && len(b) > 0:
		if len(b) > MaxLineLength {
			return "", ErrLineTooLong
		}
		return string(b), io.ErrUnexpectedEOF
	case err != nil:
		return "", err
	}
	b = b[:len(b)-1]
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	if len(b) > MaxLineLength {
		return "", ErrLineTooLong
	}
	return string(b), nil
}

// Request is one parsed request line: its first word and the words after it.
type Request struct {
	Verb string
	Args []string
}

// ParseRequest splits a request line into words, as WalT's shell agent does
// (any run of spaces or tabs separates words). A blank line gives a Request
// with an empty Verb. Control characters and bytes outside ASCII give
// ErrMalformed.
func ParseRequest(line string) (Request, error) {
	for i := 0; i < len(line); i++ {
		if c := line[i]; (c < 0x20 && c != '\t') || c > 0x7e {
			return Request{}, fmt.Errorf("%w (byte 0x%02x at offset %d)", ErrMalformed, c, i)
		}
	}
	words := strings.Fields(line)
	if len(words) == 0 {
		return Request{}, nil
	}
	return Request{Verb: words[0], Args: words[1:]}, nil
}

// String formats the request as it is sent on the wire, without "\n".
func (r Request) String() string {
	if len(r.Args) == 0 {
		return r.Verb
	}
	return r.Verb + " " + strings.Join(r.Args, " ")
}

// appendLine appends r, as String spells it, and a line end to b.
func (r Request) appendLine(b []byte) []byte {
	b = append(b, r.Verb...)
	for _, a := range r.Args {
		b = append(append(b, ' '), a...)
	}
	return append(b, '\n')
}

// quote returns s quoted for an error message, cut to a readable length.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		return fmt.Sprintf("%q...", s[:max])
	}
	return fmt.Sprintf("%q", s)
}
