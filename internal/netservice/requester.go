package netservice

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"
)

// Default deadlines of a Requester. They are short on purpose: a node whose
// agent does not answer within them is hard-rebooted, and every second spent
// waiting is a second of the user's experiment.
const (
	DefaultConnectTimeout = 2 * time.Second
	DefaultReplyTimeout   = 3 * time.Second
)

// A Requester sends one request to a node agent and reads its one-line reply.
// The zero value is ready to use with the default deadlines. A Requester is
// safe for concurrent use by any number of goroutines.
type Requester struct {
	// ConnectTimeout bounds the TCP connection set-up.
	ConnectTimeout time.Duration
	// ReplyTimeout bounds the wait for the reply line, once connected.
	ReplyTimeout time.Duration

	dialOnly bool // tests: dial every address, as elsewhere than on Linux
}

// exchangeResult is how an exchange ended: a whole reply line, or the
// error that ended it before or after the connection was up.
type exchangeResult struct {
	line      string
	connected bool
	err       error
}

// Kind classifies why a request failed.
type Kind int

const (
	KindRefused        Kind = iota + 1 // nothing listens on the node's port
	KindConnectTimeout                 // the connection could not be set up in time
	KindUnreachable                    // the network said the node cannot be reached
	KindReplyTimeout                   // connected, but no reply line in time
	KindBroken                         // the connection failed or closed before a whole line
	KindBadReply                       // a line came back that is neither OK nor KO
	KindKO                             // the agent answered KO with a reason
)

// Error is the error of a failed request. Its message is short and fit for a
// per-node result line ("connection refused", "timed out waiting for reply",
// or the agent's KO reason); Addr says which node it came from.
type Error struct {
	Addr   string
	Kind   Kind
	Reason string // the agent's words after KO, or the unexpected reply
	Err    error  // the network error, if any
}

func (e *Error) Error() string {
	switch e.Kind {
	case KindRefused:
		return "connection refused"
	case KindConnectTimeout:
		return "connection timed out"
	case KindUnreachable:
		return errorText(e.Err)
	case KindReplyTimeout:
		return "timed out waiting for reply"
	case KindBroken:
		if e.Err != nil {
			return "broken connection: " + errorText(e.Err)
		}
		return "broken connection"
	case KindBadReply:
		return "node did not respond properly: " + quote(e.Reason)
	case KindKO:
		return e.Reason
	}
	return "request failed"
}

func (e *Error) Unwrap() error { return e.Err }

// Is lets errors.Is(err, netservice.ErrRefused) and friends test the kind.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Addr == "" && t.Reason == "" && t.Err == nil && t.Kind == e.Kind
}

// Sentinels for errors.Is on errors returned by Requester.Do.
var (
	ErrRefused        = &Error{Kind: KindRefused}
	ErrConnectTimeout = &Error{Kind: KindConnectTimeout}
	ErrUnreachable    = &Error{Kind: KindUnreachable}
	ErrReplyTimeout   = &Error{Kind: KindReplyTimeout}
	ErrBroken         = &Error{Kind: KindBroken}
	ErrBadReply       = &Error{Kind: KindBadReply}
	ErrKO             = &Error{Kind: KindKO}
)

// Do connects to addr (host:port), sends "MODE single" and req in one write,
// and reads one reply line. It returns the whole line when it starts with OK,
// and an *Error otherwise. Do returns early, with ctx's error, when ctx ends.
//
// An address of IP and port, as the server's inventory gives, is reached
// with rawExchange on Linux (exchange_linux.go); others are dialled.
func (r *Requester) Do(ctx context.Context, addr string, req Request) (string, error) {
	connectTimeout := orDefault(r.ConnectTimeout, DefaultConnectTimeout)
	replyTimeout := orDefault(r.ReplyTimeout, DefaultReplyTimeout)
	msg := req.appendLine(append(make([]byte, 0, 64), "MODE single\n"...))

	if ap, err := netip.ParseAddrPort(addr); err == nil && ap.Addr().Zone() == "" && canExchange && !r.dialOnly {
		res := rawExchange(ctx, ap, msg, connectTimeout, replyTimeout)
		switch {
		case ctx.Err() != nil && res.err != nil:
			return "", ctx.Err()
		case res.err != nil && !res.connected:
			return "", dialError(addr, res.err)
		case res.err != nil:
			return "", r.ioError(ctx, addr, res.err)
		}
		return replyOf(addr, res.line)
	}

	conn, err := dial(ctx, addr, connectTimeout)
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", dialError(addr, err)
	}
	defer conn.Close()

	// Closing the connection is the only way to interrupt a blocked read
	// when the caller's context ends.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	deadline := time.Now().Add(replyTimeout)
	conn.SetDeadline(deadline)
	if _, err := conn.Write(msg); err != nil {
		return "", r.ioError(ctx, addr, err)
	}
	line, err := ReadLine(NewReader(conn))
	if err != nil {
		return "", r.ioError(ctx, addr, err)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		// The exchange is over: close with a reset rather than the
		// FIN handshake, which costs the server (and a loopback lab)
		// more CPU per node than any other step but connect. The agent
		// has written its whole reply, and waits for our close only to
		// know that the reply has arrived (see Server).
		tc.SetLinger(0)
	}
	return replyOf(addr, line)
}

// replyOf returns line when it says OK, and the *Error it says otherwise.
func replyOf(addr, line string) (string, error) {
	verb, rest, _ := strings.Cut(line, " ")
	switch verb {
	case "OK":
		return line, nil
	case "KO":
		return "", &Error{Addr: addr, Kind: KindKO, Reason: reasonText(strings.TrimSpace(rest))}
	}
	return "", &Error{Addr: addr, Kind: KindBadReply, Reason: reasonText(line)}
}

// dial connects to addr within timeout. An address of IP and port skips
// the resolver; TCP keep-alive is off,
// as a connection lasts for one request under the reply deadline (and
// switching it on costs four system calls per node).
func dial(ctx context.Context, addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout, KeepAlive: -1}
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		c, err := d.DialTCP(ctx, "tcp", netip.AddrPort{}, ap)
		if err != nil {
			return nil, err // not a nil *TCPConn in a non-nil Conn
		}
		return c, nil
	}
	return d.DialContext(ctx, "tcp", addr)
}

// MaxReasonLength bounds the agent's words an Error keeps (a KO reason or
// an unexpected reply), since results and history store them: longer ones
// are cut, with a marker saying so.
const MaxReasonLength = 256

// reasonText makes an agent's reply fit for results: bytes other than
// printable ASCII become '?', and it is cut to MaxReasonLength bytes.
func reasonText(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	if len(b) > MaxReasonLength {
		marker := fmt.Sprintf("... (cut, %d bytes)", len(b))
		b = append(b[:MaxReasonLength-len(marker)], marker...)
	}
	return string(b)
}

func (r *Requester) ioError(ctx context.Context, addr string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return &Error{Addr: addr, Kind: KindReplyTimeout, Err: err}
	}
	if errors.Is(err, ErrLineTooLong) {
		return &Error{Addr: addr, Kind: KindBadReply, Reason: "reply line over 4096 bytes"}
	}
	return &Error{Addr: addr, Kind: KindBroken, Err: err}
}

func dialError(addr string, err error) error {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return &Error{Addr: addr, Kind: KindRefused, Err: err}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return &Error{Addr: addr, Kind: KindConnectTimeout, Err: err}
	}
	return &Error{Addr: addr, Kind: KindUnreachable, Err: err}
}

// errorText returns the innermost description of a network error, such as
// "no route to host", without the operation and addresses around it.
func errorText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	if err == nil {
		return "unreachable"
	}
	return err.Error()
}

func orDefault[T time.Duration | int](d, def T) T {
	if d > 0 {
		return d
	}
	return def
}

// String names the kind, for logs and JSON results.
func (k Kind) String() string {
	switch k {
	case KindRefused:
		return "refused"
	case KindConnectTimeout:
		return "connect-timeout"
	case KindUnreachable:
		return "unreachable"
	case KindReplyTimeout:
		return "reply-timeout"
	case KindBroken:
		return "broken"
	case KindBadReply:
		return "bad-reply"
	case KindKO:
		return "ko"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}
