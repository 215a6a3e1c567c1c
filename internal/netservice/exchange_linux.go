//go:build linux

package netservice

import (
	"bytes"
	"context"
	"io"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// canExchange: on Linux, Requester.Do reaches a node given by IP and port
// with rawExchange.
const canExchange = true

// rawExchange sends msg to the agent at ap and reads its reply line, on a
// non-blocking socket that it connects, writes to right away and waits on
// through the runtime's network poller (an os.File), with none of what
// net.Dial adds for a connection that a node's exchange never needs: the
// system calls that fill in its addresses, its options, its net.Conn.
// On a loopback lab that is a fifth to a third less CPU per node than a
// dialled net.Conn (docs/bench.md).
//
// The connection must be up within connectTimeout, and the line must come
// within replyTimeout after the request was written. When ctx ends first,
// rawExchange returns ctx's error.
func rawExchange(ctx context.Context, ap netip.AddrPort, msg []byte, connectTimeout, replyTimeout time.Duration) exchangeResult {
	fd, err := connectNonBlocking(ap)
	if err != nil {
		return exchangeResult{err: err}
	}
	f := os.NewFile(uintptr(fd), "node")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return exchangeResult{err: err}
	}
	stop := context.AfterFunc(ctx, func() { f.SetDeadline(time.Now()) })
	defer stop()

	// On loopback, and often on a LAN, the handshake is over when connect
	// returns: the first write goes at once, and only a connection still
	// being set up waits to be writable.
	ex := &nodeExchange{fd: fd, msg: msg}
	if err := setDeadline(ctx, f, connectTimeout); err != nil {
		return exchangeResult{err: err}
	}
	var werr error
	if err := rc.Write(func(uintptr) bool {
		werr = ex.write()
		return werr != nil || ex.connected
	}); err != nil {
		return exchangeResult{err: ctxErr(ctx, err)}
	}
	if werr != nil {
		return exchangeResult{err: werr}
	}

	if err := setDeadline(ctx, f, replyTimeout); err != nil {
		return exchangeResult{connected: true, err: err}
	}
	res := exchangeResult{connected: true}
	buf := make([]byte, 512)
	if err := rc.Read(func(uintptr) bool {
		for {
			n, err := unix.Read(fd, buf)
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN:
				return false
			case err != nil:
				res.err = err
				return true
			case n == 0:
				res.err = endOfReply(ex.reply)
				return true
			}
			var done bool
			if res.line, done, res.err = ex.take(buf[:n]); done {
				return true
			}
		}
	}); err != nil {
		res.err = ctxErr(ctx, err)
	}
	if res.err == nil {
		// Close with a reset rather than the FIN handshake (see
		// Requester.Do).
		unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	}
	return res
}

// setDeadline gives f's I/O d from now, unless ctx has ended: ctx's end
// sets a deadline of now (rawExchange's AfterFunc), which a deadline set
// after it would undo, so ctx is looked at once the new one is in place.
func setDeadline(ctx context.Context, f *os.File, d time.Duration) error {
	f.SetDeadline(time.Now().Add(d))
	return ctx.Err()
}

// ctxErr is ctx's error if ctx has ended (its end set the deadline that
// interrupted err), else err.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// connectNonBlocking opens a non-blocking TCP socket to ap and starts
// connecting it.
func connectNonBlocking(ap netip.AddrPort) (int, error) {
	addr := ap.Addr().Unmap()
	var family int
	var sa unix.Sockaddr
	if addr.Is4() {
		family, sa = unix.AF_INET, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: addr.As4()}
	} else {
		family, sa = unix.AF_INET6, &unix.SockaddrInet6{Port: int(ap.Port()), Addr: addr.As16()}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	if err := unix.Connect(fd, sa); err != nil && err != unix.EINPROGRESS {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// A nodeExchange is what rawExchange keeps of one request: what is left to
// send, and the start of a reply line that comes in pieces.
type nodeExchange struct {
	fd        int
	msg       []byte
	connected bool // the whole request was written, so the connection is up
	reply     []byte
}

// write sends what is left of the request. It returns nil, and leaves
// connected false, while the connection is still being set up.
func (ex *nodeExchange) write() error {
	for len(ex.msg) > 0 {
		n, err := unix.Write(ex.fd, ex.msg)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return nil
		case err != nil:
			return err
		}
		ex.msg = ex.msg[n:]
	}
	ex.connected = true
	return nil
}

// take adds data, just read, to the reply. Once the line is whole, or too
// long to be a reply, it returns the line or the error and done; the
// bytes after the line are not looked at.
func (ex *nodeExchange) take(data []byte) (line string, done bool, err error) {
	if ex.reply != nil {
		ex.reply = append(ex.reply, data...)
		data = ex.reply
	}
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		b := bytes.TrimSuffix(data[:i], []byte("\r"))
		if len(b) > MaxLineLength {
			return "", true, ErrLineTooLong
		}
		return string(b), true, nil
	}
	if len(data) >= MaxLineLength+2 {
		return "", true, ErrLineTooLong
	}
	if ex.reply == nil {
		ex.reply = append([]byte(nil), data...)
	}
	return "", false, nil
}

// endOfReply is the error of a connection closed after the bytes of reply,
// as ReadLine would say it.
func endOfReply(reply []byte) error {
	switch {
	case len(reply) > MaxLineLength:
		return ErrLineTooLong
	case len(reply) > 0:
		return io.ErrUnexpectedEOF
	}
	return io.EOF
}
