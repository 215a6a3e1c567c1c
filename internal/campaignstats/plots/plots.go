// Package plots draws a campaign's boot times (walt campaign stats --svg,
// --png) with gonum.org/v1/plot: on top, the distribution of each node's
// boot times; below, the boot times round by round.
//
// The figures stay readable and cheap whatever the campaign's size: with
// up to MaxBoxNodes nodes the top plot has one box plot per node, named;
// beyond, one vertical bar per node from its 5th to its 95th percentile
// with a dot at its median, nodes ranked by median (outliers drawn with a
// different glyph). With up to MaxLineNodes nodes of up to MaxLinePoints
// boots the bottom plot has one line per node, with a legend; beyond, the
// median of each round (of each bin of rounds, beyond MaxBins rounds) and
// a band from its 5th to its 95th percentile. Nothing is drawn per boot
// when boots are many, so the image's size and the time to draw it are
// bounded whatever the campaign's: 1000 nodes × 100 rounds cost about as
// much as 30 nodes.
package plots

import (
	"cmp"
	"fmt"
	"image/color"
	"io"
	"maps"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/walt-testbed/walt/api"
	"github.com/walt-testbed/walt/internal/campaignstats"
	"github.com/walt-testbed/walt/internal/stats"
)

// Size limits, in pixels (SVG: CSS pixels, 96 per inch).
const (
	DefaultWidth  = 1000
	DefaultHeight = 800
	MinSize       = 200
	MaxSize       = 4000 // a PNG of 4000² pixels takes 64 MB
	dpi           = 96
	// MaxBoxNodes and MaxLineNodes: above these, the plots aggregate.
	MaxBoxNodes  = 30
	MaxLineNodes = 10
	// MaxLinePoints: a node with more boots than this is not drawn boot
	// by boot; the rounds are then aggregated, in at most MaxBins bins
	// of consecutive rounds.
	MaxLinePoints = 500
	MaxBins       = 1000
	// MaxBoxValues: a node's box plot with more boots than this is drawn
	// from that many evenly spaced quantiles of its boot times (same
	// box, whiskers and outside points, up to resolution).
	MaxBoxValues = 1000
)

// Axis titles, for tests and readers of the figure.
const (
	TitleDistribution = "Boot time per node"
	TitleRounds       = "Boot time per round"
	LabelBootTime     = "boot time (s)"
	LabelNode         = "node"
	LabelNodeRank     = "nodes ranked by median boot time"
	LabelRound        = "round (iteration)"
)

// Options sets the size of the image; zero fields take the defaults.
type Options struct {
	Width, Height int // pixels, MinSize to MaxSize
}

func (o Options) size() (w, h vg.Length, err error) {
	if o.Width == 0 {
		o.Width = DefaultWidth
	}
	if o.Height == 0 {
		o.Height = DefaultHeight
	}
	for _, v := range []struct {
		name string
		px   int
	}{{"width", o.Width}, {"height", o.Height}} {
		if v.px < MinSize || v.px > MaxSize {
			return 0, 0, fmt.Errorf("plot %s %d: must be %d to %d pixels", v.name, v.px, MinSize, MaxSize)
		}
	}
	px := vg.Inch / dpi
	return vg.Length(o.Width) * px, vg.Length(o.Height) * px, nil
}

// SVG writes the plots of a campaign (its statistics s, from
// campaignstats.Stats, and its boot rows) as an SVG image.
func SVG(w io.Writer, s api.CampaignStats, boots []api.CampaignBoot, o Options) error {
	width, height, err := o.size()
	if err != nil {
		return err
	}
	c := vgsvg.New(width, height)
	if err := drawAll(c, s, boots); err != nil {
		return err
	}
	_, err = c.WriteTo(w)
	return err
}

// PNG writes the same plots as a PNG image of exactly o's size.
func PNG(w io.Writer, s api.CampaignStats, boots []api.CampaignBoot, o Options) error {
	width, height, err := o.size()
	if err != nil {
		return err
	}
	c := vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(dpi), vgimg.UseBackgroundColor(color.White))
	if err := drawAll(c, s, boots); err != nil {
		return err
	}
	_, err = vgimg.PngCanvas{Canvas: c}.WriteTo(w)
	return err
}

// series holds one node's boot times, in seconds, in row order, with
// their rounds.
type series struct {
	name    string
	outlier bool
	times   []float64
	rounds  []int
}

// collect groups the rows by node, in the order of s.Nodes (nodes only
// rows name come last, in order of appearance).
func collect(s api.CampaignStats, boots []api.CampaignBoot) []*series {
	index := map[string]*series{}
	var out []*series
	add := func(name string, outlier bool) *series {
		sr := &series{name: name, outlier: outlier}
		index[name] = sr
		out = append(out, sr)
		return sr
	}
	for _, n := range s.Nodes {
		if index[n.Node] == nil {
			add(n.Node, n.Outlier)
		}
	}
	for _, b := range boots {
		v, ok := campaignstats.Seconds(b)
		if !ok {
			continue
		}
		sr := index[b.Node]
		if sr == nil {
			sr = add(b.Node, false)
		}
		sr.times = append(sr.times, v)
		sr.rounds = append(sr.rounds, b.Iteration)
	}
	return slices.DeleteFunc(out, func(sr *series) bool { return len(sr.times) == 0 })
}

func drawAll(c vg.CanvasSizer, s api.CampaignStats, boots []api.CampaignBoot) error {
	nodes := collect(s, boots)
	top, err := distribution(nodes)
	if err != nil {
		return fmt.Errorf("plot the boot time distribution: %w", err)
	}
	bottom, err := perRound(nodes)
	if err != nil {
		return fmt.Errorf("plot the boot times per round: %w", err)
	}
	plots := [][]*plot.Plot{{top}, {bottom}}
	dc := draw.New(c)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadY: vg.Centimeter / 2, PadTop: vg.Millimeter * 3,
		PadBottom: vg.Millimeter * 3, PadLeft: vg.Millimeter * 3, PadRight: vg.Millimeter * 3}
	canvases := plot.Align(plots, tiles, dc)
	top.Draw(canvases[0][0])
	bottom.Draw(canvases[1][0])
	return nil
}

func newPlot(title, x string) *plot.Plot {
	p := plot.New()
	p.Legend.Top = true
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = LabelBootTime
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	return p
}

// distribution draws box plots per node, or ranked 5–95 % bars when the
// nodes are many.
func distribution(nodes []*series) (*plot.Plot, error) {
	if len(nodes) > MaxBoxNodes {
		return rankedBars(nodes)
	}
	p := newPlot(TitleDistribution, LabelNode)
	if len(nodes) == 0 {
		p.X.Label.Text = LabelNode + " (no boot times)"
		return p, nil
	}
	names := make([]string, len(nodes))
	width := vg.Points(min(20, 400/float64(len(nodes))))
	for i, n := range nodes {
		names[i] = n.name
		if n.outlier {
			names[i] += " (!)"
		}
		values := n.times
		if len(values) > MaxBoxValues {
			sm := stats.NewSample(values)
			values = make([]float64, MaxBoxValues)
			for j := range values {
				values[j] = sm.Quantile(float64(j) / (MaxBoxValues - 1))
			}
		}
		box, err := plotter.NewBoxPlot(width, float64(i), plotter.Values(values))
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", n.name, err)
		}
		p.Add(box)
	}
	p.NominalX(names...)
	if len(nodes) > 8 {
		p.X.Tick.Label.Rotation = math.Pi / 4
		p.X.Tick.Label.XAlign = draw.XRight
		p.X.Tick.Label.YAlign = draw.YCenter
	}
	return headroom(p), nil
}

// headroom leaves the top fifth of a plot to its legend.
func headroom(p *plot.Plot) *plot.Plot {
	p.Y.Max *= 1.25
	return p
}

// bars are nodes' 5–95 % ranges around their medians.
type bars struct {
	x, median, p5, p95 []float64
}

func (b bars) Len() int                        { return len(b.x) }
func (b bars) XY(i int) (float64, float64)     { return b.x[i], b.median[i] }
func (b bars) YError(i int) (float64, float64) { return b.median[i] - b.p5[i], b.p95[i] - b.median[i] }

func (b *bars) add(x, median, p5, p95 float64) {
	b.x = append(b.x, x)
	b.median = append(b.median, median)
	b.p5 = append(b.p5, p5)
	b.p95 = append(b.p95, p95)
}

func rankedBars(nodes []*series) (*plot.Plot, error) {
	type ranked struct {
		median, p5, p95 float64
		outlier         bool
	}
	rs := make([]ranked, len(nodes))
	for i, n := range nodes {
		sm := stats.NewSample(n.times)
		rs[i] = ranked{sm.Quantile(0.5), sm.Quantile(0.05), sm.Quantile(0.95), n.outlier}
	}
	slices.SortStableFunc(rs, func(a, b ranked) int { return cmp.Compare(a.median, b.median) })
	var normal, odd bars
	for i, r := range rs {
		if r.outlier {
			odd.add(float64(i+1), r.median, r.p5, r.p95)
		} else {
			normal.add(float64(i+1), r.median, r.p5, r.p95)
		}
	}
	p := newPlot(TitleDistribution, fmt.Sprintf("%s (%d nodes)", LabelNodeRank, len(nodes)))
	for _, set := range []struct {
		b     bars
		label string
		shape draw.GlyphDrawer
		color color.Color
	}{
		{normal, "node median, 5th-95th percentile", draw.CircleGlyph{}, color.Gray{Y: 60}},
		{odd, "outlier node (triangle)", draw.TriangleGlyph{}, color.RGBA{R: 200, A: 255}},
	} {
		if set.b.Len() == 0 {
			continue
		}
		eb, err := plotter.NewYErrorBars(set.b)
		if err != nil {
			return nil, err
		}
		eb.LineStyle.Color = set.color
		eb.LineStyle.Width = vg.Points(0.5)
		eb.CapWidth = 0
		sc, err := plotter.NewScatter(set.b)
		if err != nil {
			return nil, err
		}
		sc.GlyphStyle.Shape, sc.GlyphStyle.Color = set.shape, set.color
		sc.GlyphStyle.Radius = vg.Points(1.5)
		if set.shape == (draw.TriangleGlyph{}) {
			sc.GlyphStyle.Radius = vg.Points(3)
		}
		p.Add(eb, sc)
		p.Legend.Add(set.label, sc)
	}
	return headroom(p), nil
}

// perRound draws one line per node, or the median of each round (or bin
// of rounds) with a 5–95 % band.
func perRound(nodes []*series) (*plot.Plot, error) {
	p := newPlot(TitleRounds, LabelRound)
	few := len(nodes) <= MaxLineNodes
	maxRound := 1
	for _, n := range nodes {
		few = few && len(n.times) <= MaxLinePoints
		for _, r := range n.rounds {
			maxRound = max(maxRound, r)
		}
	}
	if few {
		for i, n := range nodes {
			pts := make(plotter.XYs, len(n.times))
			for j := range n.times {
				pts[j].X, pts[j].Y = float64(n.rounds[j]), n.times[j]
			}
			slices.SortStableFunc(pts, func(a, b plotter.XY) int { return cmp.Compare(a.X, b.X) })
			line, points, err := plotter.NewLinePoints(pts)
			if err != nil {
				return nil, fmt.Errorf("node %s: %w", n.name, err)
			}
			col := palette[i%len(palette)]
			line.Color = col
			// Shapes as well as colours tell the nodes apart.
			points.Shape, points.Color = shapes[i%len(shapes)], col
			p.Add(line, points)
			p.Legend.Add(n.name, line, points)
		}
		return headroom(p), nil
	}
	// Bins of binSize consecutive rounds; bin b holds rounds
	// b·binSize+1 … (b+1)·binSize and is drawn at their middle.
	binSize := (maxRound + MaxBins - 1) / MaxBins
	what := "the round"
	if binSize > 1 {
		what = fmt.Sprintf("each %d rounds", binSize)
		p.X.Label.Text = fmt.Sprintf("%s, in bins of %d", LabelRound, binSize)
	}
	byBin := map[int][]float64{}
	for _, n := range nodes {
		for j, r := range n.rounds {
			b := max(r-1, 0) / binSize
			byBin[b] = append(byBin[b], n.times[j])
		}
	}
	bins := slices.Sorted(maps.Keys(byBin))
	median := make(plotter.XYs, len(bins))
	band := make(plotter.XYs, 2*len(bins))
	for i, b := range bins {
		sm := stats.NewSample(byBin[b])
		x := float64(b*binSize) + float64(binSize+1)/2
		median[i] = plotter.XY{X: x, Y: sm.Quantile(0.5)}
		band[i] = plotter.XY{X: x, Y: sm.Quantile(0.05)}
		band[len(band)-1-i] = plotter.XY{X: x, Y: sm.Quantile(0.95)}
	}
	poly, err := plotter.NewPolygon(band)
	if err != nil {
		return nil, err
	}
	poly.Color = color.RGBA{R: 160, G: 190, B: 230, A: 255}
	poly.LineStyle.Width = 0
	line, err := plotter.NewLine(median)
	if err != nil {
		return nil, err
	}
	line.Color = color.RGBA{B: 140, A: 255}
	line.Width = vg.Points(1.5)
	p.Add(poly, line)
	p.Legend.Add(fmt.Sprintf("median of %s (%d nodes)", what, len(nodes)), line)
	p.Legend.Add("5th-95th percentile of "+what, poly)
	return headroom(p), nil
}

var palette = []color.Color{
	color.RGBA{R: 31, G: 119, B: 180, A: 255},
	color.RGBA{R: 255, G: 127, B: 14, A: 255},
	color.RGBA{R: 44, G: 160, B: 44, A: 255},
	color.RGBA{R: 214, G: 39, B: 40, A: 255},
	color.RGBA{R: 148, G: 103, B: 189, A: 255},
	color.RGBA{R: 140, G: 86, B: 75, A: 255},
	color.RGBA{R: 227, G: 119, B: 194, A: 255},
	color.RGBA{R: 127, G: 127, B: 127, A: 255},
	color.RGBA{R: 188, G: 189, B: 34, A: 255},
	color.RGBA{R: 23, G: 190, B: 207, A: 255},
}

var shapes = []draw.GlyphDrawer{
	draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.CrossGlyph{}, draw.PlusGlyph{},
	draw.RingGlyph{}, draw.BoxGlyph{}, draw.PyramidGlyph{}, draw.CircleGlyph{}, draw.SquareGlyph{},
}
