package plots

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/campaignstats"
)

// campaign makes nodes × rounds completed boots, log-normal around
// 500 ms, node 0 twice as slow; a few failed rows without a duration.
func campaign(nodes, rounds int, seed uint64) (api.CampaignStats, []api.CampaignBoot) {
	rng := rand.New(rand.NewPCG(seed, 2))
	c := api.Campaign{ID: "c", State: api.CampaignDone, Repeat: rounds}
	for i := range nodes {
		c.Nodes = append(c.Nodes, api.CampaignNode{Node: fmt.Sprintf("node-%d", i), Model: "pc", State: api.NodeFinished})
	}
	boots := make([]api.CampaignBoot, 0, nodes*rounds)
	for r := 1; r <= rounds; r++ {
		for i, n := range c.Nodes {
			b := api.CampaignBoot{Campaign: "c", Node: n.Node, Iteration: r, Outcome: api.BootCompleted}
			if rng.IntN(50) == 0 {
				b.Outcome = api.BootFailed
			} else {
				s := 0.5 * math.Exp(0.2*rng.NormFloat64())
				if i == 0 {
					s *= 2
				}
				d := api.Duration(time.Duration(s * float64(time.Second)))
				b.BootDuration = &d
			}
			boots = append(boots, b)
		}
	}
	return campaignstats.Stats(c, boots), boots
}

// svgText parses an SVG document whole and returns its text content.
func svgText(t *testing.T, doc []byte) string {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var text strings.Builder
	root := ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG does not parse as XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tok.Name.Local
			}
		case xml.CharData:
			text.Write(tok)
			text.WriteByte('\n')
		}
	}
	if root != "svg" {
		t.Fatalf("SVG root element %q, want svg", root)
	}
	return text.String()
}

func TestSVG(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		nodes, rounds int
		want          []string
		wantNot       []string
	}{
		{"few nodes", 5, 12, []string{TitleDistribution, TitleRounds, LabelBootTime, LabelNode, LabelRound, "node-0 (!)", "node-4"}, nil},
		{"many nodes", 200, 20, []string{TitleDistribution, TitleRounds, LabelBootTime, LabelNodeRank, LabelRound, "median of the round", "outlier node"}, []string{"node-17"}},
		{"no boots", 3, 0, []string{TitleDistribution, TitleRounds, "no boot times"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, boots := campaign(tc.nodes, tc.rounds, 1)
			var out bytes.Buffer
			if err := SVG(&out, s, boots, Options{}); err != nil {
				t.Fatalf("SVG = %v", err)
			}
			text := svgText(t, out.Bytes())
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("SVG text lacks %q", w)
				}
			}
			for _, w := range tc.wantNot {
				if strings.Contains(text, w) {
					t.Errorf("SVG text has %q: nodes were not aggregated", w)
				}
			}
		})
	}
}

// TestBoundedSize: long campaigns of few nodes are aggregated too, so
// the image stays small; the SVG of 30 nodes × 5000 rounds would
// otherwise hold 150000 points.
func TestBoundedSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		nodes, rounds int
		want          string
	}{
		{10, 5000, "in bins of 5"},
		{30, 2000, "in bins of 2"},
		{3, 600, "median of the round (3 nodes)"},
	} {
		s, boots := campaign(tc.nodes, tc.rounds, 4)
		var out bytes.Buffer
		if err := SVG(&out, s, boots, Options{}); err != nil {
			t.Fatalf("SVG(%d × %d) = %v", tc.nodes, tc.rounds, err)
		}
		if out.Len() > 1<<20 {
			t.Errorf("SVG(%d nodes × %d rounds) is %d bytes, want at most 1 MiB", tc.nodes, tc.rounds, out.Len())
		}
		if text := svgText(t, out.Bytes()); !strings.Contains(text, tc.want) {
			t.Errorf("SVG(%d nodes × %d rounds) lacks %q", tc.nodes, tc.rounds, tc.want)
		}
	}
}

// TestSVGEscapes: node names reach the SVG as text, escaped.
func TestSVGEscapes(t *testing.T) {
	t.Parallel()
	s, boots := campaign(3, 5, 6)
	const evil = `n<1>&"x"]]>`
	s.Nodes[1].Node = evil
	for i := range boots {
		if boots[i].Node == "node-1" {
			boots[i].Node = evil
		}
	}
	var out bytes.Buffer
	if err := SVG(&out, s, boots, Options{}); err != nil {
		t.Fatal(err)
	}
	if text := svgText(t, out.Bytes()); !strings.Contains(text, evil) {
		t.Errorf("SVG text lacks the node name %q", evil)
	}
}

func TestPNG(t *testing.T) {
	t.Parallel()
	s, boots := campaign(40, 10, 2)
	for _, o := range []Options{{}, {Width: 640, Height: 480}, {Width: MinSize, Height: MaxSize / 4}} {
		var out bytes.Buffer
		if err := PNG(&out, s, boots, o); err != nil {
			t.Fatalf("PNG(%+v) = %v", o, err)
		}
		img, err := png.Decode(&out)
		if err != nil {
			t.Fatalf("PNG(%+v) does not decode: %v", o, err)
		}
		w, h := cmpOr(o.Width, DefaultWidth), cmpOr(o.Height, DefaultHeight)
		if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
			t.Errorf("PNG(%+v) is %dx%d, want %dx%d", o, b.Dx(), b.Dy(), w, h)
		}
	}
}

func cmpOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func TestSizeBounds(t *testing.T) {
	t.Parallel()
	s, boots := campaign(2, 2, 3)
	for _, o := range []Options{{Width: MinSize - 1}, {Height: MaxSize + 1}, {Width: -1}} {
		err := SVG(io.Discard, s, boots, o)
		bad := o.Width
		if bad == 0 {
			bad = o.Height
		}
		if err == nil || !strings.Contains(err.Error(), strconv.Itoa(bad)) {
			t.Errorf("SVG(%+v) = %v, want an error naming %d", o, err, bad)
		}
		if err := PNG(io.Discard, s, boots, o); err == nil {
			t.Errorf("PNG(%+v) = nil, want an error", o)
		}
	}
}

// BenchmarkSVG: the plots of 1000 nodes × 100 rounds. Run with
//
//	go test -run '^$' -bench . -benchtime 5x ./internal/campaignstats/plots
func BenchmarkSVG(b *testing.B) {
	s, boots := campaign(1000, 100, 1)
	var size int
	for b.Loop() {
		var out bytes.Buffer
		if err := SVG(&out, s, boots, Options{}); err != nil {
			b.Fatal(err)
		}
		size = out.Len()
	}
	b.ReportMetric(float64(size), "bytes")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(boots)), "ns/boot")
}

func BenchmarkPNG(b *testing.B) {
	s, boots := campaign(1000, 100, 1)
	for b.Loop() {
		if err := PNG(io.Discard, s, boots, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
