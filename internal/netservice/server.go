package netservice

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sync"
	"time"
)

// A Node carries out the requests that act on the machine the agent runs on.
type Node interface {
	// PrepareReboot decides whether a reboot can start. It returns an error,
	// sent to the client as "KO <error>", when it cannot: nothing is started
	// then. Otherwise it returns the function that starts the reboot, which
	// the Server calls once "OK" has reached the client, or nil when a reboot
	// is already under way. PrepareReboot must not block.
	PrepareReboot(args []string) (start func(), err error)
	// Blink runs the node's blink command; its error message is sent as
	// "KO <error>".
	Blink(ctx context.Context, args []string) error
	// Dmesg writes the kernel log to w.
	Dmesg(ctx context.Context, w io.Writer) error
}

// Server answers WalT protocol requests on behalf of a Node. Unlike WalT's
// agent it serves many connections at once, within per-peer and total
// bounds that keep room for the agent's servers (see Reserved).
type Server struct {
	Node Node
	// AllowShell enables the SHELL request, an unauthenticated shell for
	// debugging. It is off unless asked for.
	AllowShell bool
	// Shell is the command SHELL runs; default: /bin/sh -i.
	Shell []string
	// LineTimeout bounds the wait for each request line; default LineTimeout.
	LineTimeout time.Duration
	// FlushTimeout bounds how long the server waits, after a REBOOT's "OK",
	// for the client to close its side, proof that the reply has arrived;
	// default 1 s.
	FlushTimeout time.Duration
	// MaxConns bounds the connections served at once from peers that are
	// not Reserved; further ones get a KO line and are closed. Default
	// DefaultMaxConns.
	MaxConns int
	// MaxConnsPerPeer bounds the connections served at once from one IP
	// address (Reserved peers excepted), so that one client cannot take all
	// of MaxConns. Default DefaultMaxConnsPerPeer.
	MaxConnsPerPeer int
	// Reserved reports whether a peer is one of the agent's servers. Such
	// peers are not counted against MaxConns nor MaxConnsPerPeer: they share
	// ReservedConns slots of their own, so a flood from elsewhere never
	// locks them out. Nil: no peer is reserved.
	Reserved func(netip.Addr) bool
	// ReservedConns bounds the connections of Reserved peers; default
	// DefaultReservedConns.
	ReservedConns int
	// Allowed, if not nil, reports whether a peer may send the requests
	// that act on the node (REBOOT, BLINK, DMESG, SHELL); others get "KO"
	// with the reason, and a log line (at most one a second, the rest
	// counted in the next). PING stays open. Nil: every peer may, as with
	// WalT's agent.
	Allowed func(netip.Addr) bool
	Logger  *slog.Logger

	refusedMu   sync.Mutex
	refusedAt   time.Time // last refusal logged; +checklocks:refusedMu
	refusedMore int       // refusals since, not logged; +checklocks:refusedMu
}

// refusedReply is the KO line a peer that is not the node's server gets.
const refusedReply = "KO this node obeys its walt server only (walt-node --server, --allow-from)"

// allowed checks the peer of conn against Allowed, logging a refusal.
func (s *Server) allowed(conn net.Conn, verb string) bool {
	if s.Allowed == nil {
		return true
	}
	ap, err := netip.ParseAddrPort(conn.RemoteAddr().String())
	if err == nil && s.Allowed(ap.Addr().Unmap()) {
		return true
	}
	s.refusedMu.Lock()
	defer s.refusedMu.Unlock()
	if now := time.Now(); now.Sub(s.refusedAt) >= time.Second {
		log := s.Logger
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		log.Warn("request refused: the peer is not this node's server", "peer", conn.RemoteAddr().String(), "req", verb,
			"refused_since_last_line", s.refusedMore)
		s.refusedAt, s.refusedMore = now, 0
	} else {
		s.refusedMore++
	}
	return false
}

// Default connection bounds of a Server.
const (
	DefaultMaxConns        = 512
	DefaultMaxConnsPerPeer = 16
	DefaultReservedConns   = 64
)

// Accept error back-off: a failing Accept (out of file descriptors, say) is
// retried after a pause doubling from acceptBackoffMin to acceptBackoffMax,
// and logged at most once per logEvery.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
	logEvery         = 5 * time.Second
)

// Serve accepts connections on ln until ctx ends, then closes ln and every
// open connection and returns nil once all of their goroutines have exited.
// Accept errors (EMFILE when out of file descriptors, ...) are retried with
// a back-off; Serve returns an error only if ln is closed by someone else.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lim := &connLimits{
		max:      orDefault(s.MaxConns, DefaultMaxConns),
		perPeer:  orDefault(s.MaxConnsPerPeer, DefaultMaxConnsPerPeer),
		reserved: orDefault(s.ReservedConns, DefaultReservedConns),
		isServer: s.Reserved,
		peers:    map[netip.Addr]int{},
		conns:    map[net.Conn]struct{}{},
	}
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		lim.closeAll()
	})
	defer stop()
	defer wg.Wait()

	var (
		backoff              time.Duration
		acceptLog, rejectLog rateLimited
	)
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("accept on %s: %w", ln.Addr(), err)
			}
			backoff = min(max(2*backoff, acceptBackoffMin), acceptBackoffMax)
			acceptLog.warn(log, "accept failed, retrying", "addr", ln.Addr().String(), "err", err, "backoff", backoff)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		peer := peerAddr(conn.RemoteAddr())
		if reason := lim.add(conn, peer, ctx.Err() != nil); reason != "" {
			rejectLog.warn(log, "connection refused", "peer", peer.String(), "reason", reason)
			conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			io.WriteString(conn, "KO "+reason+". Closing on my side.\n")
			conn.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.handle(ctx, conn, log.With("peer", conn.RemoteAddr().String()), &wg)
			// The slot is free before the peer sees the close, so that a
			// client reconnecting at once is not refused.
			lim.remove(conn, peer)
			conn.Close()
		}()
	}
}

// peerAddr is the IP address of a connection's remote end; the zero Addr
// for an address that is not IP.
func peerAddr(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// connLimits counts the open connections, per peer and in all.
type connLimits struct {
	max, perPeer, reserved int
	isServer               func(netip.Addr) bool

	mu             sync.Mutex
	ordinary, srvs int                   // +checklocks:mu
	peers          map[netip.Addr]int    // +checklocks:mu
	conns          map[net.Conn]struct{} // +checklocks:mu
	closed         bool                  // +checklocks:mu
}

func (l *connLimits) server(peer netip.Addr) bool { return l.isServer != nil && l.isServer(peer) }

// add counts a new connection, or returns why it is refused.
func (l *connLimits) add(c net.Conn, peer netip.Addr, stopping bool) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case stopping || l.closed:
		return "agent stopping"
	case l.server(peer):
		if l.srvs >= l.reserved {
			return fmt.Sprintf("too many connections from servers (limit %d)", l.reserved)
		}
		l.srvs++
	case l.peers[peer] >= l.perPeer:
		return fmt.Sprintf("too many connections from %s (limit %d)", peer, l.perPeer)
	case l.ordinary >= l.max:
		return fmt.Sprintf("too many connections (limit %d)", l.max)
	default:
		l.ordinary++
		l.peers[peer]++
	}
	l.conns[c] = struct{}{}
	return ""
}

func (l *connLimits) remove(c net.Conn, peer netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.conns, c)
	if l.server(peer) {
		l.srvs--
		return
	}
	l.ordinary--
	if l.peers[peer]--; l.peers[peer] <= 0 {
		delete(l.peers, peer)
	}
}

func (l *connLimits) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for c := range l.conns {
		c.Close()
	}
}

// rateLimited logs a warning at most once per logEvery, with the number of
// the ones left out since the last.
type rateLimited struct {
	last       time.Time
	suppressed int
}

func (r *rateLimited) warn(log *slog.Logger, msg string, args ...any) {
	if now := time.Now(); now.Sub(r.last) >= logEvery {
		r.last = now
		log.Warn(msg, append(args, "suppressed", r.suppressed)...)
		r.suppressed = 0
		return
	}
	r.suppressed++
}

// session is one client connection.
type session struct {
	s     *Server
	conn  net.Conn
	r     *bufio.Reader
	log   *slog.Logger
	multi bool
	// procs counts the reboot procedures started after a connection
	// closed: Serve waits for them as for the connections.
	procs *sync.WaitGroup
}

func (s *Server) handle(ctx context.Context, conn net.Conn, log *slog.Logger, procs *sync.WaitGroup) {
	ss := &session{s: s, conn: conn, r: NewReader(conn), log: log, procs: procs}
	moded := false
	for {
		line, err := ss.readLine()
		if err != nil {
			switch {
			case errors.Is(err, ErrLineTooLong):
				ss.reply("KO " + err.Error() + ". Closing on my side.")
			case errors.Is(err, net.ErrClosed):
			default:
				// Timeout or end of stream, WalT answers both the same way.
				ss.reply(ReplyTimeout)
			}
			return
		}
		if line == "" {
			// WalT closes without reply on an empty line.
			return
		}
		req, err := ParseRequest(line)
		if err != nil {
			ss.reply("KO " + err.Error() + ". Closing on my side.")
			return
		}
		if req.Verb == "" {
			continue // whitespace only
		}
		switch {
		case req.Verb == VerbMode:
			moded = true
			ss.multi = len(req.Args) > 0 && req.Args[0] == "multi"
			continue
		case req.Verb == VerbClose:
			ss.reply(ReplyClosing)
			return
		case !moded:
			ss.reply(ReplyStartWithMode)
			return
		}
		if done := ss.dispatch(ctx, req); done || !ss.multi {
			return
		}
	}
}

func (ss *session) readLine() (string, error) {
	ss.conn.SetReadDeadline(time.Now().Add(orDefault(ss.s.LineTimeout, LineTimeout)))
	return ReadLine(ss.r)
}

func (ss *session) reply(line string) error {
	ss.conn.SetWriteDeadline(time.Now().Add(orDefault(ss.s.LineTimeout, LineTimeout)))
	_, err := io.WriteString(ss.conn, line+"\n")
	return err
}

// dispatch serves one request. It reports whether the connection must end.
func (ss *session) dispatch(ctx context.Context, req Request) (done bool) {
	ss.log.Debug("request", "req", req.Verb)
	switch req.Verb {
	case VerbReboot, VerbBlink, VerbDmesg, VerbShell:
		if !ss.s.allowed(ss.conn, req.Verb) {
			ss.reply(refusedReply)
			return false
		}
	}
	switch req.Verb {
	case VerbPing:
		ss.reply(ReplyOK)
	case VerbReboot:
		ss.reboot(req.Args)
		return true
	case VerbBlink:
		if err := ss.s.Node.Blink(ctx, req.Args); err != nil {
			ss.reply("KO " + err.Error())
		} else {
			ss.reply(ReplyOK)
		}
	case VerbDmesg:
		ss.reply(ReplyOK + "\n")
		ss.conn.SetWriteDeadline(time.Now().Add(orDefault(ss.s.LineTimeout, LineTimeout)))
		if err := ss.s.Node.Dmesg(ctx, ss.conn); err != nil {
			ss.log.Warn("dmesg failed", "err", err)
		}
	case VerbShell:
		if !ss.s.AllowShell {
			ss.reply("KO SHELL is disabled on this node (start walt-node with --allow-shell to enable it)")
			return false
		}
		ss.shell(ctx)
		return true
	default:
		ss.reply("KO unknown request " + quote(req.Verb))
	}
	return false
}

// reboot answers REBOOT. "OK" must reach the client before the node goes
// down: the reply is written, our side is shut down, and the client's close
// is awaited (bounded by FlushTimeout) before the reboot starts.
func (ss *session) reboot(args []string) {
	start, err := ss.s.Node.PrepareReboot(args)
	if err != nil {
		ss.reply("KO " + err.Error())
		return
	}
	if err := ss.reply(ReplyOK); err != nil {
		ss.log.Warn("could not send REBOOT reply", "err", err)
	}
	if tc, ok := ss.conn.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
	}
	ss.conn.SetReadDeadline(time.Now().Add(orDefault(ss.s.FlushTimeout, time.Second)))
	io.Copy(io.Discard, ss.r)
	ss.conn.Close()
	if start != nil {
		// The connection's goroutine holds a count of procs: Add is safe
		// while Serve waits.
		ss.procs.Add(1)
		go func() {
			defer ss.procs.Done()
			start()
		}()
	}
}

// shell runs an interactive shell on the connection, as WalT's SHELL does:
// "OK", an empty line, then the shell's output; each input line must arrive
// within LineTimeout, else SHELL-TIMEOUT is written and the shell's input is
// closed; "END-OF-SHELL" follows the shell's exit.
func (ss *session) shell(ctx context.Context) {
	argv := ss.s.Shell
	if len(argv) == 0 {
		argv = []string{"/bin/sh", "-i"}
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	out := &lockedWriter{w: ss.conn}
	cmd.Stdout, cmd.Stderr = out, out
	stdin, err := cmd.StdinPipe()
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		ss.reply("KO cannot start shell: " + err.Error())
		return
	}
	out.Write([]byte(ReplyOK + "\n\n"))
	go func() {
		defer stdin.Close()
		for {
			ss.conn.SetReadDeadline(time.Now().Add(orDefault(ss.s.LineTimeout, LineTimeout)))
			b, err := ss.r.ReadSlice('\n')
			if len(b) > 0 {
				if _, werr := stdin.Write(b); werr != nil {
					return
				}
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				out.Write([]byte(ReplyShellTimeout + "\n"))
				return
			}
			if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
				return
			}
		}
	}()
	if err := cmd.Wait(); err != nil {
		ss.log.Debug("shell ended", "err", err)
	}
	out.Write([]byte(ReplyEndOfShell + "\n"))
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
