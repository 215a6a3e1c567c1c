package snmpswitch

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/gosnmp/gosnmp"
)

// oid is a parsed object identifier.
type oid []uint32

func parseOID(s string) (oid, error) {
	s = strings.TrimPrefix(s, ".")
	if s == "" {
		return nil, fmt.Errorf("parse oid: empty")
	}
	parts := strings.Split(s, ".")
	o := make(oid, len(parts))
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("parse oid %q: %w", s, err)
		}
		o[i] = uint32(n)
	}
	return o, nil
}

func mustOID(s string) oid {
	o, err := parseOID(s)
	if err != nil {
		panic(err)
	}
	return o
}

func (o oid) String() string {
	var b strings.Builder
	for _, n := range o {
		b.WriteByte('.')
		b.WriteString(strconv.FormatUint(uint64(n), 10))
	}
	return b.String()
}

// with returns o followed by sub, in a new slice.
func (o oid) with(sub ...int) oid {
	r := make(oid, len(o), len(o)+len(sub))
	copy(r, o)
	for _, s := range sub {
		r = append(r, uint32(s))
	}
	return r
}

func (o oid) hasPrefix(p oid) bool {
	return len(o) >= len(p) && slices.Equal(o[:len(p)], p)
}

// entry is one object instance the agent serves. get returns the current
// value; set, when not nil, makes the object writable: check validates a
// value without applying it (SNMP SETs are all-or-nothing), apply applies it.
type entry struct {
	oid   oid
	get   func() (gosnmp.Asn1BER, any)
	check func(t gosnmp.Asn1BER, v any) gosnmp.SNMPError
	apply func(v any)
}

// mib is a set of entries sorted by OID, for GET and GETNEXT.
type mib struct {
	entries []entry
	objects []oid // object types (table columns, scalars without .0)
}

func (m *mib) add(e entry) { m.entries = append(m.entries, e) }

func (m *mib) sort() {
	slices.SortFunc(m.entries, func(a, b entry) int { return slices.Compare(a.oid, b.oid) })
}

// find returns the entry with exactly this OID.
func (m *mib) find(o oid) (*entry, bool) {
	i, ok := slices.BinarySearchFunc(m.entries, o, func(e entry, t oid) int { return slices.Compare(e.oid, t) })
	if !ok {
		return nil, false
	}
	return &m.entries[i], true
}

// next returns the first entry whose OID is greater than o.
func (m *mib) next(o oid) (*entry, bool) {
	i, found := slices.BinarySearchFunc(m.entries, o, func(e entry, t oid) int { return slices.Compare(e.oid, t) })
	if found {
		i++
	}
	if i >= len(m.entries) {
		return nil, false
	}
	return &m.entries[i], true
}

// objectOf reports whether o lies under an object type the agent implements
// (a missing instance, noSuchInstance) rather than a missing object
// (noSuchObject).
func (m *mib) objectOf(o oid) bool {
	for _, p := range m.objects {
		if o.hasPrefix(p) {
			return true
		}
	}
	return false
}
