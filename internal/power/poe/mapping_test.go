package poe

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func ifRange(from, to int, typ int, speed uint64) []Interface {
	var r []Interface
	for i := from; i <= to; i++ {
		r = append(r, Interface{Index: i, Type: typ, Speed: speed})
	}
	return r
}

func poeRange(group, from, to int) []PoEIndex {
	var r []PoEIndex
	for p := from; p <= to; p++ {
		r = append(r, PoEIndex{Group: group, Port: p})
	}
	return r
}

func join[T any](parts ...[]T) []T {
	var r []T
	for _, p := range parts {
		r = append(r, p...)
	}
	return r
}

func TestGuessMapping(t *testing.T) {
	t.Parallel()
	const (
		g1  = 1_000_000_000
		g10 = 4_294_967_295
		eth = ifTypeEthernet
	)
	cases := []struct {
		name  string
		ifs   []Interface
		ports []PoEIndex
		want  map[int]PoEIndex // ifIndex -> PoE port; nil: must fail
	}{
		{
			name: "rule 1: as many 10M/100M/1G interfaces as PoE ports",
			ifs: join(ifRange(1, 8, eth, g1), ifRange(9, 10, eth, g10),
				[]Interface{{Index: 100, Type: 136, Speed: g1 * 0}}),
			ports: poeRange(1, 1, 8),
			want:  map[int]PoEIndex{1: {1, 1}, 2: {1, 2}, 3: {1, 3}, 4: {1, 4}, 5: {1, 5}, 6: {1, 6}, 7: {1, 7}, 8: {1, 8}},
		},
		{
			name:  "rule 1 pairs in index order, not in table order",
			ifs:   []Interface{{Index: 12, Type: eth, Speed: 100_000_000}, {Index: 10, Type: eth, Speed: 10_000_000}, {Index: 11, Type: 1, Speed: g1}},
			ports: []PoEIndex{{2, 1}, {1, 2}, {1, 1}},
			want:  map[int]PoEIndex{10: {1, 1}, 11: {1, 2}, 12: {2, 1}},
		},
		{
			name: "rule 2: contiguous ethernet interfaces, PoE ports first",
			// 4 PoE ports, then 2 non-PoE 1G SFP ports: rule 1 counts 6.
			ifs:   join(ifRange(1, 6, eth, g1), []Interface{{Index: 50, Type: 24}}),
			ports: poeRange(1, 1, 4),
			want:  map[int]PoEIndex{1: {1, 1}, 2: {1, 2}, 3: {1, 3}, 4: {1, 4}},
		},
		{
			name: "rule 3: equal groups on runs of interfaces split by holes",
			// Two stacked units of 4 PoE ports + 1 SFP each, numbered 1-5
			// and 21-25: rule 1 counts 10 for 8 ports, rule 2 sees a gap.
			ifs:   join(ifRange(1, 5, eth, g1), ifRange(21, 25, eth, g1)),
			ports: join(poeRange(1, 1, 4), poeRange(2, 1, 4)),
			want: map[int]PoEIndex{1: {1, 1}, 2: {1, 2}, 3: {1, 3}, 4: {1, 4},
				21: {2, 1}, 22: {2, 2}, 23: {2, 3}, 24: {2, 4}},
		},
		{
			name:  "rule 3 skips runs shorter than a group",
			ifs:   join(ifRange(1, 2, eth, g1), ifRange(5, 9, eth, g1), ifRange(11, 15, eth, g1)),
			ports: join(poeRange(1, 1, 4), poeRange(2, 1, 4)),
			want: map[int]PoEIndex{5: {1, 1}, 6: {1, 2}, 7: {1, 3}, 8: {1, 4},
				11: {2, 1}, 12: {2, 2}, 13: {2, 3}, 14: {2, 4}},
		},
		{
			name:  "fails: groups of different sizes",
			ifs:   join(ifRange(1, 5, eth, g1), ifRange(21, 25, eth, g1)),
			ports: join(poeRange(1, 1, 4), poeRange(2, 1, 2)),
		},
		{
			name:  "fails: not enough runs for the groups",
			ifs:   join(ifRange(1, 6, eth, g1), ifRange(21, 23, eth, g1)),
			ports: join(poeRange(1, 1, 4), poeRange(2, 1, 4)),
		},
		{
			name:  "fails: no PoE ports",
			ifs:   ifRange(1, 5, eth, g1),
			ports: nil,
		},
	}
	for _, c := range cases {
		got, err := guessMapping(c.ifs, c.ports)
		if c.want == nil {
			if err == nil || !errors.Is(err, errNoMapping) {
				t.Errorf("%s: guessMapping = %v, %v; want errNoMapping", c.name, got, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: guessMapping: %v", c.name, err)
			continue
		}
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("%s: guessMapping mismatch (-want +got):\n%s", c.name, diff)
		}
	}
}
