//go:build linux

package netservice

import (
	"bytes"
	"container/heap"
	"context"
	"io"
	"net/netip"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The poller carries the exchanges of Requester.Do to nodes given by IP
// and port: each is a non-blocking socket that the calling goroutine
// connects and writes to, and that one goroutine, the poller's loop, reads
// when epoll says it is ready and closes when a whole line came back or
// its deadline passed. A reboot of a thousand nodes is then a thousand
// sockets and one event loop, as in WalT's server, instead of a thousand
// net.Conns, each with its own deadline timers, poll descriptor and the
// system calls net.Dial makes to fill in the addresses that a node's
// exchange never reads: on a loopback lab about a third less CPU per node
// (docs/bench.md).
//
// The loop runs only while an exchange is pending, and holds the poller's
// lock while it reads and closes sockets, so that a caller giving up
// (its context ended) never closes a descriptor the loop is using.
type poller struct {
	epfd   int
	wakefd int // an eventfd, written when the loop must wake before its deadline

	mu      sync.Mutex
	pending map[int]*nodeExchange // by socket descriptor; +checklocks:mu
	byTime  deadlines             // +checklocks:mu
	seq     uint32                // tags the epoll registration of each exchange; +checklocks:mu
	running bool                  // a loop goroutine serves pending; +checklocks:mu
	wakeAt  time.Time             // when the running loop wakes by itself; +checklocks:mu
}

// A nodeExchange is one request to one node, from its connection to its reply.
type nodeExchange struct {
	fd        int
	seq       uint32 // its epoll tag: an event with another tag is for an older socket of the same number
	msg       []byte // what is left to send
	connected bool   // the whole request was written, so the connection is up
	reply     []byte // the start of a reply line that came in pieces
	timeout   time.Duration
	deadline  time.Time
	index     int // in byTime
	done      chan exchangeResult
}

// exchangeResult is how an exchange ended: a whole reply line, or the
// error that ended it before or after the connection was up.
type exchangeResult struct {
	line      string
	connected bool
	err       error
}

var (
	pollerOnce   sync.Once
	sharedPoller *poller // nil when the process could not make one: Do then dials
)

// thePoller returns the process's poller, made at first use.
func thePoller() *poller {
	pollerOnce.Do(func() {
		p, err := newPoller()
		if err == nil {
			sharedPoller = p
		}
	})
	return sharedPoller
}

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakefd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, err
	}
	return &poller{epfd: epfd, wakefd: wakefd, pending: make(map[int]*nodeExchange)}, nil
}

// do sends msg to the agent at ap and returns its reply line. The
// connection must be up within connectTimeout and the line must come
// within replyTimeout after the request was written. When ctx ends first,
// do closes the socket and returns ctx's error.
func (p *poller) do(ctx context.Context, ap netip.AddrPort, msg []byte, connectTimeout, replyTimeout time.Duration) exchangeResult {
	fd, err := connectNonBlocking(ap)
	if err != nil {
		return exchangeResult{err: err}
	}
	ex := &nodeExchange{fd: fd, msg: msg, timeout: replyTimeout, done: make(chan exchangeResult, 1)}
	// On loopback, and often on a LAN, the handshake is over when connect
	// returns: write now, and leave to the loop only what must wait.
	if err := ex.write(); err != nil {
		unix.Close(fd)
		return exchangeResult{err: err}
	}
	now := time.Now()
	ex.deadline = now.Add(connectTimeout)
	if ex.connected {
		ex.deadline = now.Add(replyTimeout)
	}
	if err := p.add(ex); err != nil {
		unix.Close(fd)
		return exchangeResult{connected: ex.connected, err: err}
	}
	select {
	case r := <-ex.done:
		return r
	case <-ctx.Done():
		p.abandon(ex)
		return exchangeResult{connected: ex.connected, err: ctx.Err()}
	}
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

// add hands ex to the loop, starting it if none runs, or waking it if ex's
// deadline comes before the loop would wake.
func (p *poller) add(ex *nodeExchange) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	ex.seq = p.seq
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(ex.fd), Pad: int32(ex.seq)}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, ex.fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	p.pending[ex.fd] = ex
	heap.Push(&p.byTime, ex)
	switch {
	case !p.running:
		p.running = true
		go p.loop()
	case ex.deadline.Before(p.wakeAt):
		p.wake()
	}
	return nil
}

func (p *poller) wake() {
	var one = [8]byte{1}
	unix.Write(p.wakefd, one[:])
}

// abandon drops ex, if the loop has not finished it yet.
func (p *poller) abandon(ex *nodeExchange) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending[ex.fd] == ex {
		p.drop(ex)
		unix.Close(ex.fd)
	}
}

// +checklocks:p.mu
func (p *poller) drop(ex *nodeExchange) {
	delete(p.pending, ex.fd)
	heap.Remove(&p.byTime, ex.index)
}

// finish ends ex with r. After a whole reply line, the socket is closed
// with a reset rather than the FIN handshake (see Requester.Do).
//
// +checklocks:p.mu
func (p *poller) finish(ex *nodeExchange, r exchangeResult) {
	p.drop(ex)
	if r.err == nil {
		unix.SetsockoptLinger(ex.fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	}
	unix.Close(ex.fd)
	r.connected = ex.connected
	ex.done <- r
}

// loop serves the pending exchanges until there are none.
func (p *poller) loop() {
	events := make([]unix.EpollEvent, 128)
	scratch := make([]byte, MaxLineLength+2)
	p.mu.Lock()
	for {
		p.expire(time.Now())
		if len(p.pending) == 0 {
			p.running = false
			p.mu.Unlock()
			return
		}
		p.wakeAt = p.byTime[0].deadline
		wait := time.Until(p.wakeAt)
		p.mu.Unlock()
		n, err := unix.EpollWait(p.epfd, events, waitMillis(wait))
		p.mu.Lock()
		if err != nil {
			continue // EINTR; anything else shows again at the next wait
		}
		for _, e := range events[:n] {
			if int(e.Fd) == p.wakefd {
				var b [8]byte
				unix.Read(p.wakefd, b[:])
				continue
			}
			if ex := p.pending[int(e.Fd)]; ex != nil && ex.seq == uint32(e.Pad) {
				p.serve(ex, scratch)
			}
		}
	}
}

// waitMillis rounds d up to whole milliseconds, for epoll_wait.
func waitMillis(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Millisecond - 1) / time.Millisecond)
}

// expire ends, with os.ErrDeadlineExceeded, every exchange whose deadline
// has passed.
//
// +checklocks:p.mu
func (p *poller) expire(now time.Time) {
	for len(p.byTime) > 0 && !p.byTime[0].deadline.After(now) {
		p.finish(p.byTime[0], exchangeResult{err: os.ErrDeadlineExceeded})
	}
}

// serve moves ex on after epoll said its socket is ready: it finishes
// writing the request, then reads the reply. It trusts what the system
// calls return rather than the event, which may be stale.
//
// +checklocks:p.mu
func (p *poller) serve(ex *nodeExchange, scratch []byte) {
	if !ex.connected {
		if err := ex.write(); err != nil {
			p.finish(ex, exchangeResult{err: err})
			return
		}
		if !ex.connected {
			return
		}
		ex.deadline = time.Now().Add(ex.timeout)
		heap.Fix(&p.byTime, ex.index)
	}
	for {
		n, err := unix.Read(ex.fd, scratch)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return
		case err != nil:
			p.finish(ex, exchangeResult{err: err})
			return
		case n == 0:
			p.finish(ex, exchangeResult{err: endOfReply(ex.reply)})
			return
		}
		if r, done := ex.take(scratch[:n]); done {
			p.finish(ex, r)
			return
		}
	}
}

// take adds data, just read, to the reply, and returns how the exchange
// ends when the reply line is whole, or too long to be a reply.
func (ex *nodeExchange) take(data []byte) (exchangeResult, bool) {
	if ex.reply != nil {
		ex.reply = append(ex.reply, data...)
		data = ex.reply
	}
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		line := bytes.TrimSuffix(data[:i], []byte("\r"))
		if len(line) > MaxLineLength {
			return exchangeResult{err: ErrLineTooLong}, true
		}
		return exchangeResult{line: string(line)}, true
	}
	if len(data) >= MaxLineLength+2 {
		return exchangeResult{err: ErrLineTooLong}, true
	}
	if ex.reply == nil {
		ex.reply = append([]byte(nil), data...)
	}
	return exchangeResult{}, false
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

// deadlines orders pending exchanges by deadline (container/heap).
type deadlines []*nodeExchange

func (d deadlines) Len() int           { return len(d) }
func (d deadlines) Less(i, j int) bool { return d[i].deadline.Before(d[j].deadline) }
func (d deadlines) Swap(i, j int) {
	d[i], d[j] = d[j], d[i]
	d[i].index = i
	d[j].index = j
}
func (d *deadlines) Push(x any) {
	ex := x.(*nodeExchange)
	ex.index = len(*d)
	*d = append(*d, ex)
}
func (d *deadlines) Pop() any {
	old := *d
	ex := old[len(old)-1]
	old[len(old)-1] = nil
	*d = old[:len(old)-1]
	return ex
}
