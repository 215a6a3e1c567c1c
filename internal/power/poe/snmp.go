package poe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/walt-testbed/walt/internal/power"
)

// session is one SNMP conversation with one switch. Not safe for concurrent
// use; the driver serialises the exchanges with one switch.
type session struct {
	g     *gosnmp.GoSNMP
	sw    *SwitchConfig
	limit *int // varbinds per request; halved when the agent answers tooBig
	wait  time.Duration
	tries int
	// observe, if not nil, hears of each exchange (Driver.ObserveRequests).
	observe RequestObserver
}

// A RequestObserver hears of each SNMP request the driver sends: the
// switch's name, the operation (get, set, walk), the time to the answer
// or the failure (retries included), and the error, nil if the switch
// answered (an error status is an answer). It is called on the driver's
// goroutines, possibly concurrently, and must not block.
type RequestObserver func(switchName, op string, elapsed time.Duration, err error)

func openSession(sw *SwitchConfig, cfg *Config, limit *int) (*session, error) {
	host, port, err := splitAddress(sw.Address)
	if err != nil {
		return nil, err
	}
	version := gosnmp.Version2c
	if sw.Version == V1 {
		version = gosnmp.Version1
	}
	g := &gosnmp.GoSNMP{
		Target:         host,
		Port:           port,
		Transport:      "udp",
		Community:      sw.Community.Reveal(),
		Version:        version,
		Timeout:        cfg.Timeout,
		Retries:        cfg.Retries,
		MaxOids:        gosnmp.MaxOids,
		MaxRepetitions: 50,
	}
	if err := g.Connect(); err != nil {
		return nil, fmt.Errorf("open udp socket to %s: %w", sw.Address, err)
	}
	return &session{g: g, sw: sw, limit: limit, wait: cfg.Timeout, tries: cfg.Retries + 1}, nil
}

func (s *session) close() { _ = s.g.Conn.Close() }

func splitAddress(addr string) (string, uint16, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		// No port: the SNMP port.
		if strings.Contains(err.Error(), "missing port") {
			return addr, 161, nil
		}
		return "", 0, fmt.Errorf("switch address %q: %w", addr, err)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil || port == 0 {
		return "", 0, fmt.Errorf("switch address %q: bad port", addr)
	}
	return host, uint16(port), nil
}

// StatusError is an SNMP error status answered by a switch.
type StatusError struct {
	Status string // e.g. "notWritable", as named by RFC 3416
	OID    string // the variable the status is about, if the agent said
}

func (e *StatusError) Error() string {
	if e.OID == "" {
		return "switch answered " + e.Status
	}
	return fmt.Sprintf("switch answered %s for %s", e.Status, e.OID)
}

func statusName(s gosnmp.SNMPError) string {
	n := s.String()
	if n == "" || strings.HasPrefix(n, "SNMPError(") {
		return fmt.Sprintf("error status %d", int(s))
	}
	return strings.ToLower(n[:1]) + n[1:]
}

// exchange sends one request, op (get, set, walk), and tells the
// observer; it turns transport errors into errors naming the switch,
// without the community.
func (s *session) exchange(ctx context.Context, op string, send func() (*gosnmp.SnmpPacket, error)) (*gosnmp.SnmpPacket, error) {
	s.g.Context = ctx
	start := time.Now()
	r, err := send()
	if s.observe != nil {
		s.observe(s.sw.Name, op, time.Since(start), err)
	}
	if err == nil {
		return r, nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return nil, fmt.Errorf("no answer from %s (%s) before the operation ended: %w", s.sw.Name, s.sw.Address, ctxErr)
	}
	if errors.Is(err, gosnmp.ErrMaxRetriesExceeded) || errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		return nil, fmt.Errorf("no answer from %s (%s) after %s (%d tries): check the SNMP community and that the switch is reachable: %w",
			s.sw.Name, s.sw.Address, time.Since(start).Round(time.Millisecond), s.tries, power.ErrUnreachable)
	}
	// gosnmp's text may quote the packet, community included: keep only
	// a scrubbed description.
	detail := scrub(err.Error(), s.sw.Community.Reveal())
	var ne net.Error
	if errors.As(err, &ne) {
		return nil, fmt.Errorf("talk to %s (%s): %s: %w", s.sw.Name, s.sw.Address, detail, power.ErrUnreachable)
	}
	return nil, fmt.Errorf("malformed SNMP reply from %s (%s): %s: %w", s.sw.Name, s.sw.Address, detail, power.ErrUnreachable)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// varResult is the outcome for one variable of a GET or SET.
type varResult struct {
	pdu gosnmp.SnmpPDU
	err error
}

// get reads oids, in requests of at most *s.limit variables. A variable the
// switch lacks gets an error wrapping power.ErrUnsupported in its result;
// the returned error is for failures of whole requests (no answer, denial).
func (s *session) get(ctx context.Context, oids []string) ([]varResult, error) {
	res := make([]varResult, len(oids))
	pending := make([]int, len(oids))
	for i := range pending {
		pending[i] = i
	}
	for len(pending) > 0 {
		n := min(len(pending), *s.limit)
		chunk := pending[:n]
		names := make([]string, n)
		for i, k := range chunk {
			names[i] = oids[k]
		}
		r, err := s.exchange(ctx, "get", func() (*gosnmp.SnmpPacket, error) {
			s.g.MaxOids = len(names)
			return s.g.Get(names)
		})
		if err != nil {
			return nil, err
		}
		switch {
		case r.Error == gosnmp.TooBig && n > 1:
			*s.limit = max(1, n/2)
			continue
		case r.Error == gosnmp.NoSuchName && int(r.ErrorIndex) >= 1 && int(r.ErrorIndex) <= n:
			// SNMPv1: one variable is missing and the request failed;
			// note it and ask again for the others.
			k := chunk[r.ErrorIndex-1]
			res[k].err = fmt.Errorf("%s has no object %s: %w", s.sw.Name, oids[k], power.ErrUnsupported)
			pending = append(pending[:r.ErrorIndex-1:r.ErrorIndex-1], pending[r.ErrorIndex:]...)
			continue
		case r.Error != gosnmp.NoError:
			return nil, s.statusError(r, names, "read")
		case len(r.Variables) != n:
			return nil, fmt.Errorf("read from %s (%s): %d variables answered for %d asked", s.sw.Name, s.sw.Address, len(r.Variables), n)
		}
		for i, k := range chunk {
			vb := r.Variables[i]
			switch vb.Type {
			case gosnmp.NoSuchObject, gosnmp.NoSuchInstance, gosnmp.EndOfMibView:
				res[k].err = fmt.Errorf("%s has no object %s: %w", s.sw.Name, oids[k], power.ErrUnsupported)
			default:
				res[k].pdu = vb
			}
		}
		pending = pending[n:]
	}
	return res, nil
}

// set writes pdus, in requests of at most *s.limit variables. A SET is
// all-or-nothing: when the switch rejects one variable (error index), that
// variable gets the error and the others are sent again without it. Errors
// about the whole request (no answer, access denied) end the operation: the
// returned error applies to every variable not yet written, and done
// reports which were.
func (s *session) set(ctx context.Context, pdus []gosnmp.SnmpPDU) (errs []error, done []bool, err error) {
	errs = make([]error, len(pdus))
	done = make([]bool, len(pdus))
	pending := make([]int, len(pdus))
	for i := range pending {
		pending[i] = i
	}
	for len(pending) > 0 {
		n := min(len(pending), *s.limit)
		chunk := pending[:n]
		vars := make([]gosnmp.SnmpPDU, n)
		names := make([]string, n)
		for i, k := range chunk {
			vars[i] = pdus[k]
			names[i] = pdus[k].Name
		}
		r, err := s.exchange(ctx, "set", func() (*gosnmp.SnmpPacket, error) { return s.g.Set(vars) })
		if err != nil {
			return errs, done, err
		}
		if r.Error == gosnmp.TooBig && n > 1 {
			*s.limit = max(1, n/2)
			continue
		}
		if r.Error != gosnmp.NoError {
			idx := int(r.ErrorIndex)
			if !perVariable(r) || idx < 1 || idx > n {
				return errs, done, s.statusError(r, names, "write")
			}
			k := chunk[idx-1]
			errs[k] = s.statusError(r, names, "write")
			pending = append(pending[:idx-1:idx-1], pending[idx:]...)
			continue
		}
		for _, k := range chunk {
			done[k] = true
		}
		pending = pending[n:]
	}
	return errs, done, nil
}

// perVariable reports whether a SET error status is about the variable at
// the error index (so the others may be retried) rather than the request.
func perVariable(r *gosnmp.SnmpPacket) bool {
	switch r.Error {
	case gosnmp.BadValue, gosnmp.WrongType, gosnmp.WrongLength, gosnmp.WrongEncoding,
		gosnmp.WrongValue, gosnmp.NoCreation, gosnmp.InconsistentValue, gosnmp.InconsistentName:
		return true
	case gosnmp.NoSuchName:
		// SNMPv1 says noSuchName both for a missing object and for a
		// read-only community; the driver read the objects just before, so
		// take it as a denial of the request.
		return false
	}
	return false
}

func (s *session) statusError(r *gosnmp.SnmpPacket, names []string, op string) error {
	se := &StatusError{Status: statusName(r.Error)}
	if i := int(r.ErrorIndex); i >= 1 && i <= len(names) {
		se.OID = names[i-1]
	}
	var kind error
	switch r.Error {
	case gosnmp.NoAccess, gosnmp.NotWritable, gosnmp.AuthorizationError, gosnmp.ReadOnly:
		kind = power.ErrDenied
	case gosnmp.NoSuchName:
		if op == "write" {
			kind = power.ErrDenied
			se.Status += " (SNMPv1: object missing or not writable with this community)"
		} else {
			kind = power.ErrUnsupported
		}
	case gosnmp.NoCreation:
		kind = power.ErrUnsupported
	}
	if kind == nil {
		return fmt.Errorf("%s on %s (%s): %w", op, s.sw.Name, s.sw.Address, se)
	}
	return fmt.Errorf("%s on %s (%s): %w: %w", op, s.sw.Name, s.sw.Address, se, kind)
}

// walk returns the variables under root (GETBULK for v2c, GETNEXT for v1).
// A missing subtree is an empty result.
func (s *session) walk(ctx context.Context, root string) ([]gosnmp.SnmpPDU, error) {
	var out []gosnmp.SnmpPDU
	_, err := s.exchange(ctx, "walk", func() (*gosnmp.SnmpPacket, error) {
		var err error
		if s.g.Version == gosnmp.Version1 {
			out, err = s.g.WalkAll(root)
		} else {
			out, err = s.g.BulkWalkAll(root)
		}
		return &gosnmp.SnmpPacket{}, err
	})
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", root, err)
	}
	return out, nil
}

// index returns the sub-identifiers of name below column, or nil.
func index(name, column string) []int {
	rest, ok := strings.CutPrefix(name, column+".")
	if !ok {
		return nil
	}
	parts := strings.Split(rest, ".")
	idx := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil
		}
		idx[i] = n
	}
	return idx
}

func asInt(pdu gosnmp.SnmpPDU) (int64, bool) {
	switch pdu.Type {
	case gosnmp.Integer, gosnmp.Counter32, gosnmp.Gauge32, gosnmp.TimeTicks, gosnmp.Counter64, gosnmp.Uinteger32:
		return gosnmp.ToBigInt(pdu.Value).Int64(), true
	}
	return 0, false
}

func asBytes(pdu gosnmp.SnmpPDU) []byte {
	switch v := pdu.Value.(type) {
	case []byte:
		return v
	case string:
		return []byte(v)
	}
	return nil
}
