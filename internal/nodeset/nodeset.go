// Package nodeset parses WalT device sets: comma-separated device names and
// keywords (my-nodes, free-nodes, all-nodes, all-switches, all-devices,
// explorable-switches, server), where a name may hold numeric ranges in
// brackets: rpi[01-12], node[1-3,7], r[1-2]n[1-4]; and, walt's own,
// model:NAME, the nodes of a model.
//
// A set comes from the network: parsing it costs time linear in its length
// plus the names it expands to, which MaxNames bounds before any name is
// built, and it stops when its context ends.
package nodeset

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/walt-testbed/walt/internal/vocab"
)

// Keywords of the set syntax.
const (
	MyNodes            = "my-nodes"
	FreeNodes          = "free-nodes"
	AllNodes           = "all-nodes"
	AllSwitches        = "all-switches"
	AllDevices         = "all-devices"
	ExplorableSwitches = "explorable-switches"
	Server             = "server"
)

// ModelPrefix starts an element naming the nodes of a model (model:rpi-b):
// ':' is in no device name.
const ModelPrefix = "model:"

var keywords = map[string]bool{
	MyNodes: true, FreeNodes: true, AllNodes: true, AllSwitches: true,
	AllDevices: true, ExplorableSwitches: true, Server: true,
}

// MaxNames bounds how many terms one set may expand to, repeats included:
// "a[1-60000],a[1-60000]" is refused although it names 60000 devices. It is
// far above any real testbed and bounds the work of a request.
const MaxNames = 100000

// MaxNameLen is the longest device name a set may hold, the bound the store
// puts on device names (sqlstore.ValidateName).
const MaxNameLen = 64

// checkEvery is how many names are built between two looks at the context.
const checkEvery = 1024

// ErrSyntax is wrapped by every parse error.
var ErrSyntax = errors.New("invalid device set")

// Term is one element of a parsed set: a keyword or a device name.
type Term struct {
	Keyword string
	Name    string
	// Model is the model a model:NAME element names.
	Model string
}

// String returns the term as written.
func (t Term) String() string {
	switch {
	case t.Keyword != "":
		return t.Keyword
	case t.Model != "":
		return ModelPrefix + t.Model
	}
	return t.Name
}

// Parse is ParseContext without a deadline, for sets that do not come from
// a request.
func Parse(set string) ([]Term, error) {
	return ParseContext(context.Background(), set)
}

// ParseContext parses a set and expands its ranges. Terms keep their order;
// duplicates are removed. The whole set is checked, and its size counted,
// before any name is built; building stops with ctx's error when ctx ends.
func ParseContext(ctx context.Context, set string) ([]Term, error) {
	if strings.TrimSpace(set) == "" {
		return nil, fmt.Errorf("%w: empty set (name devices, or use my-nodes, all-nodes...)", ErrSyntax)
	}
	if err := checkBrackets(set); err != nil {
		return nil, err
	}
	total := 0
	var p itemParser
	err := eachItem(set, func(item string) error {
		n := 1
		if m, ok := strings.CutPrefix(item, ModelPrefix); ok {
			if err := checkModel(item, m); err != nil {
				return err
			}
		} else if !keywords[item] {
			var err error
			if n, err = p.parse(item); err != nil {
				return err
			}
		}
		if total += n; total > MaxNames {
			return fmt.Errorf("%w %s: expands to more than %d names", ErrSyntax, quote(set), MaxNames)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	// Memory follows the distinct names, not total: "a[1],a[1]..." is one.
	hint := min(total, checkEvery)
	b := builder{terms: make([]Term, 0, hint), seen: make(map[string]bool, hint), kw: make(map[string]bool)}
	err = eachItem(set, func(item string) error {
		if m, ok := strings.CutPrefix(item, ModelPrefix); ok {
			b.model(m)
			return nil
		}
		if keywords[item] {
			b.keyword(item)
			return nil
		}
		if _, err := p.parse(item); err != nil {
			return err // checked above: cannot happen
		}
		b.buf = b.buf[:0]
		return b.expand(ctx, &p, 0)
	})
	if err != nil {
		return nil, err
	}
	return b.terms, nil
}

// quote quotes a set for an error message, cut if long: the message must
// not grow with a hostile request.
func quote(s string) string {
	const max = 64
	if len(s) <= max {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:max]) + fmt.Sprintf("... (%d bytes)", len(s))
}

// checkBrackets checks that brackets pair up, unnested, and that no element
// is empty.
func checkBrackets(set string) error {
	depth := 0
	for i := 0; i < len(set); i++ {
		switch set[i] {
		case '[':
			if depth > 0 {
				return fmt.Errorf("%w %s: nested '[' at offset %d", ErrSyntax, quote(set), i)
			}
			depth++
		case ']':
			if depth == 0 {
				return fmt.Errorf("%w %s: ']' without '[' at offset %d", ErrSyntax, quote(set), i)
			}
			depth--
		case ',':
			if depth == 0 && (i == 0 || set[i-1] == ',' || i == len(set)-1) {
				return fmt.Errorf("%w %s: empty element (two commas in a row, or a comma at an end)", ErrSyntax, quote(set))
			}
		}
	}
	if depth > 0 {
		return fmt.Errorf("%w %s: '[' not closed", ErrSyntax, quote(set))
	}
	return nil
}

// eachItem calls fn on each element of set, cut at the commas outside
// brackets. set has passed checkBrackets.
func eachItem(set string, fn func(item string) error) error {
	depth, start := 0, 0
	for i := 0; i <= len(set); i++ {
		if i < len(set) {
			switch set[i] {
			case '[':
				depth++
				continue
			case ']':
				depth--
				continue
			case ',':
				if depth > 0 {
					continue
				}
			default:
				continue
			}
		}
		if err := fn(set[start:i]); err != nil {
			return err
		}
		start = i + 1
	}
	return nil
}

func validNameByte(c byte) bool { return vocab.NameByte(c) }

// numRange is lo to hi, printed at least width digits wide.
type numRange struct{ lo, hi, width int }

// segment is literal text followed by a bracket group; the last segment
// of an item has none.
type segment struct {
	text   string
	nr     int        // ranges of the group
	ranges []numRange // its ranges, in itemParser.ranges
}

// itemParser holds one parsed item. Its slices are reused from item to
// item, so that a set of many small items costs no more than its length.
type itemParser struct {
	segs   []segment
	ranges []numRange
}

// parse parses item (no comma outside brackets, brackets paired) and
// returns how many names it expands to.
func (p *itemParser) parse(item string) (int, error) {
	p.segs, p.ranges = p.segs[:0], p.ranges[:0]
	count, length := 1, 0
	rest := item
	for {
		open := strings.IndexByte(rest, '[')
		text := rest
		if open >= 0 {
			text = rest[:open]
		}
		for i := 0; i < len(text); i++ {
			if !validNameByte(text[i]) {
				return 0, fmt.Errorf("%w: name %s: character %q not allowed", ErrSyntax, quote(item), text[i])
			}
		}
		length += len(text)
		if open < 0 {
			p.segs = append(p.segs, segment{text: text})
			break
		}
		closeAt := open + strings.IndexByte(rest[open:], ']')
		first := len(p.ranges)
		n, width, err := p.parseGroup(item, rest[open+1:closeAt])
		if err != nil {
			return 0, err
		}
		length += width
		if length > MaxNameLen {
			return 0, fmt.Errorf("%w: name %s: longer than %d characters", ErrSyntax, quote(item), MaxNameLen)
		}
		if count *= n; count > MaxNames {
			return 0, fmt.Errorf("%w: %s expands to more than %d names", ErrSyntax, quote(item), MaxNames)
		}
		p.segs = append(p.segs, segment{text: text, nr: len(p.ranges) - first})
		rest = rest[closeAt+1:]
	}
	if length > MaxNameLen {
		return 0, fmt.Errorf("%w: name %s: longer than %d characters", ErrSyntax, quote(item), MaxNameLen)
	}
	// p.ranges moves while it grows: point the segments at it now.
	off := 0
	for i := range p.segs {
		n := p.segs[i].nr
		p.segs[i].ranges = p.ranges[off : off+n : off+n]
		off += n
	}
	return count, nil
}

// parseGroup parses "01-03,7" (01, 02, 03, 7) into p.ranges and returns how
// many numbers it holds and the width of the widest. A bound written with a
// leading zero sets the width of every number of its range.
func (p *itemParser) parseGroup(item, group string) (count, width int, err error) {
	if group == "" {
		return 0, 0, fmt.Errorf("%w: %s: empty range []", ErrSyntax, quote(item))
	}
	for part := range strings.SplitSeq(group, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		if !isRange {
			hi = lo
		}
		a, errA := parseNum(lo)
		b, errB := parseNum(hi)
		if errA != nil || errB != nil {
			return 0, 0, fmt.Errorf("%w: %s: range %s: expected numbers such as [1-12] or [01-12,20]", ErrSyntax, quote(item), quote(part))
		}
		if a > b {
			return 0, 0, fmt.Errorf("%w: %s: range %s goes down", ErrSyntax, quote(item), quote(part))
		}
		if count += b - a + 1; count > MaxNames {
			return 0, 0, fmt.Errorf("%w: %s expands to more than %d names", ErrSyntax, quote(item), MaxNames)
		}
		r := numRange{lo: a, hi: b}
		if len(lo) > 1 && lo[0] == '0' {
			r.width = len(lo)
		}
		width = max(width, r.width, len(strconv.Itoa(b)))
		p.ranges = append(p.ranges, r)
	}
	return count, width, nil
}

func parseNum(s string) (int, error) {
	if s == "" || len(s) > 9 {
		return 0, strconv.ErrSyntax
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, strconv.ErrSyntax
		}
	}
	return strconv.Atoi(s)
}

// builder collects the terms of a set, without duplicates.
type builder struct {
	terms []Term
	seen  map[string]bool // names
	kw    map[string]bool // keywords
	built int
	buf   []byte
}

func (b *builder) model(m string) {
	if k := ModelPrefix + m; !b.kw[k] {
		b.kw[k] = true
		b.terms = append(b.terms, Term{Model: m})
	}
}

// checkModel checks the model of a model:NAME element: 1 to MaxNameLen
// characters of those of device names.
func checkModel(item, m string) error {
	if m == "" || len(m) > MaxNameLen {
		return fmt.Errorf("%w: %s: want model:NAME, NAME of 1 to %d characters", ErrSyntax, quote(item), MaxNameLen)
	}
	for i := 0; i < len(m); i++ {
		if !validNameByte(m[i]) {
			return fmt.Errorf("%w: %s: character %q not allowed in a model", ErrSyntax, quote(item), m[i])
		}
	}
	return nil
}

func (b *builder) keyword(k string) {
	if !b.kw[k] {
		b.kw[k] = true
		b.terms = append(b.terms, Term{Keyword: k})
	}
}

// expand builds the names of p's segments from segs[i] on, after the text
// already in b.buf.
func (b *builder) expand(ctx context.Context, p *itemParser, i int) error {
	seg := p.segs[i]
	b.buf = append(b.buf, seg.text...)
	if i == len(p.segs)-1 {
		return b.name(ctx)
	}
	mark := len(b.buf)
	for _, r := range seg.ranges {
		for n := r.lo; n <= r.hi; n++ {
			b.buf = appendPadded(b.buf[:mark], n, r.width)
			if err := b.expand(ctx, p, i+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// name adds the name in b.buf, and looks at the context now and then.
func (b *builder) name(ctx context.Context) error {
	if b.built++; b.built%checkEvery == 0 {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("expand device set: %w", err)
		}
	}
	if b.seen[string(b.buf)] {
		return nil
	}
	n := string(b.buf)
	b.seen[n] = true
	b.terms = append(b.terms, Term{Name: n})
	return nil
}

func appendPadded(buf []byte, n, width int) []byte {
	var digits [20]byte
	d := strconv.AppendInt(digits[:0], int64(n), 10)
	for range width - len(d) {
		buf = append(buf, '0')
	}
	return append(buf, d...)
}
