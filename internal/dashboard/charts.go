package dashboard

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/samplit/samplit/internal/engine"
	"github.com/samplit/samplit/internal/engine/stats"
	"github.com/samplit/samplit/internal/optimize"
	"github.com/samplit/samplit/internal/store"
)

// Charts are SVG drawn here, in Go, and written into the page by the
// templates (charts are data structures until then, so html/template escapes
// every label). Each chart also carries its numbers as data attributes,
// printed exactly (see exact), so that tests — and anyone curious — can
// check a picture against the results it claims to show.
//
// Colour: the Okabe–Ito palette (in app.css, classes c0…c7), which stays
// distinguishable under the common colour-blindnesses. Colour is never the
// only cue: lines have their own dash patterns, curves and lines are labelled
// with their variant's key where they are drawn, and every mark has a <title>.

// The size of every chart's drawing, in SVG units (the CSS scales it).
const (
	chartW     = 640.0
	chartH     = 240.0
	padLeft    = 52.0
	padRight   = 96.0 // room for the end-of-line labels
	padTop     = 14.0
	padBottom  = 30.0
	plotLeft   = padLeft
	plotRight  = chartW - padRight
	plotTop    = padTop
	plotBottom = chartH - padBottom
)

// numColors is the number of palette classes; variant i gets class c(i mod numColors).
const numColors = 8

func colorClass(i int) string { return fmt.Sprintf("c%d", i%numColors) }

// tick is an axis label at a position.
type tick struct {
	Pos   float64
	Label string
}

// Frame is what every chart with axes shares. (Exported, like the chart
// types' fields, only so that the templates can reach it.)
type Frame struct {
	W, H                   float64
	Left, Right, Top, Bott float64
	XLabelY, YLabelX       float64 // where the axis labels go
	XTicks, YTicks         []tick
	Empty                  string // when set, the chart has no data and says why
}

func newFrame() Frame {
	return Frame{W: chartW, H: chartH, Left: plotLeft, Right: plotRight, Top: plotTop, Bott: plotBottom,
		XLabelY: plotBottom + 18, YLabelX: plotLeft - 6}
}

// scale maps [lo, hi] onto [a, b].
func scale(x, lo, hi, a, b float64) float64 {
	if hi == lo {
		return (a + b) / 2
	}
	return a + (x-lo)/(hi-lo)*(b-a)
}

// niceTicks returns about n round values covering [lo, hi].
func niceTicks(lo, hi float64, n int) []float64 {
	if !(hi > lo) {
		return []float64{lo}
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var out []float64
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		out = append(out, math.Round(v/step)*step)
	}
	return out
}

// pathOf turns points into an SVG path ("M x,y L x,y ...").
func pathOf(xs, ys []float64) string {
	var b strings.Builder
	for i := range xs {
		if i == 0 {
			b.WriteString("M")
		} else {
			b.WriteString(" L")
		}
		fmt.Fprintf(&b, "%.1f,%.1f", xs[i], ys[i])
	}
	return b.String()
}

// joinExact prints numbers for a data attribute, space-separated.
func joinExact(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = exact(x)
	}
	return strings.Join(parts, " ")
}

// --- P(best) bars -----------------------------------------------------------

// bar is one horizontal bar of a value in [0, 1], drawn in a 100-wide box.
type bar struct {
	Col   string // what it shows: "p_best" or "weight"
	Key   string
	Class string
	Value float64 // exact, for the data attribute
	Width float64
	Label string
}

func newBar(col, key string, i int, v float64) bar {
	return bar{Col: col, Key: key, Class: colorClass(i), Value: v, Width: 100 * math.Min(1, math.Max(0, v)), Label: pct(v)}
}

// --- Posterior densities ----------------------------------------------------

// densityChart draws every variant's posterior of θ on one axis.
type densityChart struct {
	Frame
	Series []densitySeries
}

// densitySeries is one variant's posterior curve.
type densitySeries struct {
	Key, Class string
	Index      int
	Path       string
	// Dist is "beta" (A = α, B = β) or "normal" (A = μ, B = σ).
	Dist string
	A, B float64
	// Mean, CILow and CIHigh are the results' own values for the variant.
	Mean, CILow, CIHigh float64
	Describe            string // the distribution in words, for <title>
	LabelX, LabelY      float64
	CIX0, CIX1, CIY     float64 // the 95% interval, drawn under the curve's peak
}

// z975 is the 97.5% standard normal quantile: a 95% interval is ±z975·σ.
var z975 = stats.NormalQuantile(0.975)

// posteriorOf returns the posterior the results were computed from. Binary:
// Beta(α0 + c, β0 + n − c) with the engine's prior (experiments use its
// default). Continuous: the engine's posterior is Normal and the results'
// 95% interval is its 2.5% and 97.5% quantiles, so μ and σ follow from that
// interval exactly, with no second copy of the engine's pooled prior here.
func posteriorOf(metric store.Metric, v engine.VariantResult) (dist string, a, b float64) {
	if metric == store.MetricBinary {
		c, n := float64(v.Conversions), float64(v.Units)
		return "beta", engine.DefaultPriorAlpha + c, engine.DefaultPriorBeta + n - c
	}
	return "normal", (v.CILow + v.CIHigh) / 2, (v.CIHigh - v.CILow) / (2 * z975)
}

func density(dist string, a, b, x float64) float64 {
	if dist == "beta" {
		return stats.BetaPDF(x, a, b)
	}
	if !(b > 0) {
		return 0
	}
	return stats.NormalPDF((x-a)/b) / b
}

func quantile(dist string, a, b, p float64) float64 {
	if dist == "beta" {
		return stats.BetaQuantile(p, a, b)
	}
	return a + b*stats.NormalQuantile(p)
}

func newDensityChart(res *optimize.Results) densityChart {
	c := densityChart{Frame: newFrame()}
	if res == nil || len(res.Variants) == 0 {
		c.Empty = "No variants to show."
		return c
	}
	type post struct {
		dist string
		a, b float64
	}
	posts := make([]post, len(res.Variants))
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, v := range res.Variants {
		d, a, b := posteriorOf(res.Metric, v)
		posts[i] = post{d, a, b}
		lo = math.Min(lo, quantile(d, a, b, 0.0005))
		hi = math.Max(hi, quantile(d, a, b, 0.9995))
	}
	if !(hi > lo) || math.IsInf(lo, 0) || math.IsInf(hi, 0) || math.IsNaN(lo+hi) {
		lo, hi = lo-1, hi+1
		if math.IsNaN(lo) || math.IsInf(lo, 0) || math.IsInf(hi, 0) {
			lo, hi = 0, 1
		}
	}
	pad := (hi - lo) * 0.05
	lo, hi = lo-pad, hi+pad
	if res.Metric == store.MetricBinary {
		lo, hi = math.Max(0, lo), math.Min(1, hi)
	}
	const n = 160
	xs := make([]float64, n+1)
	for i := range xs {
		xs[i] = lo + (hi-lo)*float64(i)/n
	}
	ys := make([][]float64, len(posts))
	ymax := 0.0
	for i, p := range posts {
		ys[i] = make([]float64, len(xs))
		for j, x := range xs {
			y := density(p.dist, p.a, p.b, x)
			if math.IsNaN(y) || math.IsInf(y, 0) {
				y = 0
			}
			ys[i][j] = y
			ymax = math.Max(ymax, y)
		}
	}
	if !(ymax > 0) {
		ymax = 1
	}
	px := make([]float64, len(xs))
	for j, x := range xs {
		px[j] = scale(x, lo, hi, c.Left, c.Right)
	}
	for i, v := range res.Variants {
		p := posts[i]
		py := make([]float64, len(xs))
		peak := 0
		for j, y := range ys[i] {
			py[j] = scale(y, 0, ymax*1.08, c.Bott, c.Top)
			if y > ys[i][peak] {
				peak = j
			}
		}
		s := densitySeries{
			Key: v.Key, Class: colorClass(i), Index: i, Path: pathOf(px, py),
			Dist: p.dist, A: p.a, B: p.b, Mean: v.Mean, CILow: v.CILow, CIHigh: v.CIHigh,
			LabelX: px[peak], LabelY: py[peak] - 4,
			CIX0: scale(v.CILow, lo, hi, c.Left, c.Right), CIX1: scale(v.CIHigh, lo, hi, c.Left, c.Right),
			CIY: c.Bott - 4 - 5*float64(i%4),
		}
		if p.dist == "beta" {
			s.Describe = fmt.Sprintf("%s: Beta(%s, %s); 95%% interval %s to %s", v.Key, num(p.a), num(p.b), pct(v.CILow), pct(v.CIHigh))
		} else {
			s.Describe = fmt.Sprintf("%s: Normal(mean %s, sd %s); 95%% interval %s to %s", v.Key, num(p.a), num(p.b), num(v.CILow), num(v.CIHigh))
		}
		c.Series = append(c.Series, s)
	}
	for _, t := range niceTicks(lo, hi, 5) {
		label := num(t)
		if res.Metric == store.MetricBinary {
			label = pct(t)
		}
		c.XTicks = append(c.XTicks, tick{scale(t, lo, hi, c.Left, c.Right), label})
	}
	return c
}

// --- Time charts ------------------------------------------------------------

// timeChart is a chart over the hours of a timeseries: the stacked
// allocation weights or the cumulative conversions.
type timeChart struct {
	Frame
	ID, Kind, Title string // Kind: "area" (stacked) or "line"
	// Hours lists the hours of the data (RFC 3339, exact), one per value of
	// every series.
	Hours  string
	Series []timeSeries
}

// timeSeries is one variant's layer (allocation) or line (cumulative).
type timeSeries struct {
	Key, Class string
	Index      int
	Path       string
	// Values are the numbers drawn, one per hour of the chart.
	Values         string
	Last           float64
	LastLabel      string
	LabelX, LabelY float64
}

// seriesTable arranges points as a table: the sorted hours, and for each
// variant (in e's order) its point of each hour (zero when it has none).
func seriesTable(e *store.Experiment, pts []optimize.Point) ([]time.Time, []string, [][]optimize.Point) {
	var hours []time.Time
	for _, p := range pts {
		if !slices.ContainsFunc(hours, p.Hour.Equal) {
			hours = append(hours, p.Hour)
		}
	}
	slices.SortFunc(hours, time.Time.Compare)
	variants := slices.Clone(e.Variants)
	slices.SortStableFunc(variants, func(a, b store.Variant) int { return a.Position - b.Position })
	keys := make([]string, len(variants))
	table := make([][]optimize.Point, len(variants))
	for i, v := range variants {
		keys[i] = v.Key
		table[i] = make([]optimize.Point, len(hours))
	}
	for _, p := range pts {
		vi := slices.Index(keys, p.Variant)
		hi := slices.IndexFunc(hours, p.Hour.Equal)
		if vi >= 0 && hi >= 0 {
			table[vi][hi] = p
		}
	}
	return hours, keys, table
}

// timeAxis maps hours onto x: each hour is a column [h, h+1h).
type timeAxis struct{ from, to time.Time }

func (a timeAxis) x(t time.Time) float64 {
	return scale(float64(t.Sub(a.from)), 0, float64(a.to.Sub(a.from)), plotLeft, plotRight)
}

func (a timeAxis) ticks() []tick {
	span := a.to.Sub(a.from)
	layout := "2 Jan"
	if span <= 72*time.Hour {
		layout = "2 Jan 15:04"
	}
	step := time.Hour
	for _, s := range []time.Duration{time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 48 * time.Hour, 7 * 24 * time.Hour, 14 * 24 * time.Hour, 28 * 24 * time.Hour} {
		step = s
		if span/s <= 4 {
			break
		}
	}
	var out []tick
	for t := a.from; !t.After(a.to); t = t.Add(step) {
		out = append(out, tick{a.x(t), t.UTC().Format(layout)})
	}
	return out
}

func hoursAttr(hours []time.Time) string {
	parts := make([]string, len(hours))
	for i, h := range hours {
		parts[i] = h.UTC().Format(time.RFC3339)
	}
	return strings.Join(parts, " ")
}

// newAllocationChart stacks the variants' allocation weights, hour by hour,
// in variant order from the bottom: Point.Weight, the average share of new
// traffic each variant had in the hour.
func newAllocationChart(e *store.Experiment, pts []optimize.Point) timeChart {
	c := timeChart{Frame: newFrame(), ID: "allocation", Kind: "area", Title: "Allocation weights over time"}
	hours, keys, table := seriesTable(e, pts)
	if len(hours) == 0 {
		c.Empty = "No traffic yet: the weights appear once units are assigned."
		return c
	}
	ax := timeAxis{hours[0], hours[len(hours)-1].Add(time.Hour)}
	top := 1.0
	for h := range hours {
		sum := 0.0
		for v := range keys {
			sum += table[v][h].Weight
		}
		top = math.Max(top, sum)
	}
	c.Hours = hoursAttr(hours)
	base := make([]float64, len(hours))
	for v, key := range keys {
		vals := make([]float64, len(hours))
		var upper, lower []float64 // y of the layer's top and bottom, per column edge
		var ux, lx []float64
		for h, hour := range hours {
			w := table[v][h].Weight
			vals[h] = w
			x0, x1 := ax.x(hour), ax.x(hour.Add(time.Hour))
			y0 := scale(base[h], 0, top, plotBottom, plotTop)
			y1 := scale(base[h]+w, 0, top, plotBottom, plotTop)
			ux, upper = append(ux, x0, x1), append(upper, y1, y1)
			lx, lower = append(lx, x0, x1), append(lower, y0, y0)
			base[h] += w
		}
		slices.Reverse(lx)
		slices.Reverse(lower)
		path := pathOf(append(ux, lx...), append(upper, lower...)) + " Z"
		last := vals[len(vals)-1]
		s := timeSeries{Key: key, Class: colorClass(v), Index: v, Path: path, Values: joinExact(vals), Last: last, LastLabel: key + " " + pct(last)}
		s.LabelX = plotRight + 4
		s.LabelY = scale(base[len(hours)-1]-last/2, 0, top, plotBottom, plotTop) + 4
		c.Series = append(c.Series, s)
	}
	spreadLabels(c.Series)
	c.XTicks = ax.ticks()
	for _, t := range niceTicks(0, top, 4) {
		c.YTicks = append(c.YTicks, tick{scale(t, 0, top, plotBottom, plotTop), pct(t)})
	}
	return c
}

// newCumulativeChart draws each variant's running total of conversions
// (binary) or of value (continuous), hour by hour.
func newCumulativeChart(e *store.Experiment, pts []optimize.Point) timeChart {
	c := timeChart{Frame: newFrame(), ID: "cumulative", Kind: "line", Title: "Cumulative conversions over time"}
	if e.Metric != store.MetricBinary {
		c.Title = "Cumulative value over time"
	}
	hours, keys, table := seriesTable(e, pts)
	if len(hours) == 0 {
		c.Empty = "No data yet."
		return c
	}
	ax := timeAxis{hours[0], hours[len(hours)-1].Add(time.Hour)}
	cum := make([][]float64, len(keys))
	lo, hi := 0.0, 0.0
	for v := range keys {
		cum[v] = make([]float64, len(hours))
		total := 0.0
		for h := range hours {
			if e.Metric == store.MetricBinary {
				total += float64(table[v][h].Conversions)
			} else {
				total += table[v][h].Sum
			}
			cum[v][h] = total
			lo, hi = math.Min(lo, total), math.Max(hi, total)
		}
	}
	if hi == lo {
		hi = lo + 1
	}
	c.Hours = hoursAttr(hours)
	for v, key := range keys {
		// A step line: the total holds through each hour and rises at its end.
		var xs, ys []float64
		xs, ys = append(xs, ax.x(hours[0])), append(ys, scale(0, lo, hi, plotBottom, plotTop))
		for h, hour := range hours {
			y := scale(cum[v][h], lo, hi, plotBottom, plotTop)
			xs, ys = append(xs, ax.x(hour), ax.x(hour.Add(time.Hour))), append(ys, y, y)
		}
		last := cum[v][len(hours)-1]
		label := key + " " + num(last)
		if e.Metric == store.MetricBinary {
			label = key + " " + count(int64(last))
		}
		c.Series = append(c.Series, timeSeries{
			Key: key, Class: colorClass(v), Index: v, Path: pathOf(xs, ys), Values: joinExact(cum[v]),
			Last: last, LastLabel: label, LabelX: plotRight + 4, LabelY: ys[len(ys)-1] + 4,
		})
	}
	spreadLabels(c.Series)
	c.XTicks = ax.ticks()
	for _, t := range niceTicks(lo, hi, 4) {
		label := num(t)
		if e.Metric == store.MetricBinary {
			label = count(int64(t))
		}
		c.YTicks = append(c.YTicks, tick{scale(t, lo, hi, plotBottom, plotTop), label})
	}
	return c
}

// spreadLabels moves end-of-line labels apart vertically so that they do not
// overlap (at least 12 units between baselines), keeping their order.
func spreadLabels(ss []timeSeries) {
	idx := make([]int, len(ss))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		switch {
		case ss[a].LabelY < ss[b].LabelY:
			return -1
		case ss[a].LabelY > ss[b].LabelY:
			return 1
		}
		return 0
	})
	for k := 1; k < len(idx); k++ {
		prev, cur := &ss[idx[k-1]], &ss[idx[k]]
		if cur.LabelY-prev.LabelY < 12 {
			cur.LabelY = prev.LabelY + 12
		}
	}
}

// --- Funnel -----------------------------------------------------------------

// funnelChart draws each step's units as a horizontal bar, with the
// drop-off from the step before.
type funnelChart struct {
	W, H  float64
	Steps []funnelBar
	Empty string
}

type funnelBar struct {
	Key           string
	Units         int64
	DropOff       *float64
	Y, Width      float64
	Label         string
	DropOffAttr   string // exact, or "" for the first step
	TextY         float64
	ConversionPct string
}

func newFunnelChart(res *optimize.FunnelResults) funnelChart {
	c := funnelChart{W: chartW}
	if res == nil || res.FunnelResult == nil || len(res.Steps) == 0 {
		c.Empty = "No steps to show."
		return c
	}
	var maxUnits int64 = 1
	for _, s := range res.Steps {
		maxUnits = max(maxUnits, s.Units)
	}
	const rowH = 34.0
	for i, s := range res.Steps {
		b := funnelBar{
			Key: s.Key, Units: s.Units, DropOff: s.DropOff,
			Y:     6 + rowH*float64(i),
			Width: math.Max(1, (chartW-200)*float64(s.Units)/float64(maxUnits)),
		}
		b.TextY = b.Y + 17
		b.Label = fmt.Sprintf("%s · %s units", s.Key, count(s.Units))
		if s.DropOff != nil {
			b.DropOffAttr = exact(*s.DropOff)
			b.Label += fmt.Sprintf(" · %s dropped off", pct(*s.DropOff))
		}
		c.Steps = append(c.Steps, b)
	}
	c.H = 12 + rowH*float64(len(res.Steps))
	return c
}

// --- Campaign waves ---------------------------------------------------------

// waveChart stacks, per wave of a campaign, each variant's share of that
// wave's sends: a column per wave, oldest first, as the results list them.
// A variant the guardrail stopped is hatched as well as coloured, so that
// the stop shows without colour.
type waveChart struct {
	Frame
	Waves  []waveColumn
	Legend []waveLegend
}

type waveColumn struct {
	Wave  int64
	Sends int64
	At    time.Time
	X, W  float64
	Segs  []waveSeg
}

type waveSeg struct {
	Key, Class string
	Share      float64 // exact, for the data attribute
	Y, H       float64
	Stopped    bool
	Title      string
}

type waveLegend struct {
	Key, Class string
	Stopped    bool
}

// maxWaveTicks bounds the wave numbers written under the columns.
const maxWaveTicks = 10

func newWaveChart(res *optimize.CampaignResults, stopped []string) waveChart {
	c := waveChart{Frame: newFrame()}
	c.Right = chartW - padLeft/2 // a legend below replaces the end labels
	for i, v := range res.Variants {
		c.Legend = append(c.Legend, waveLegend{Key: v.Key, Class: colorClass(i), Stopped: slices.Contains(stopped, v.Key)})
	}
	if len(res.Waves) == 0 {
		c.Empty = "No waves yet: they appear once the campaign sends."
		return c
	}
	n := len(res.Waves)
	step := (c.Right - c.Left) / float64(n)
	gap := math.Min(4, step*0.15)
	every := (n + maxWaveTicks - 1) / maxWaveTicks
	for k, w := range res.Waves {
		col := waveColumn{Wave: w.Wave, Sends: w.Sends, At: w.At, X: c.Left + step*float64(k) + gap/2, W: step - gap}
		base := 0.0
		for i, v := range res.Variants {
			share, ok := w.Shares[v.Key]
			if !ok {
				continue
			}
			y0 := scale(base, 0, 1, plotBottom, plotTop)
			y1 := scale(base+share, 0, 1, plotBottom, plotTop)
			col.Segs = append(col.Segs, waveSeg{
				Key: v.Key, Class: colorClass(i), Share: share, Y: y1, H: y0 - y1,
				Stopped: slices.Contains(stopped, v.Key),
				Title:   fmt.Sprintf("Wave %d: %s %s of %s sends", w.Wave, v.Key, pct(share), count(w.Sends)),
			})
			base += share
		}
		c.Waves = append(c.Waves, col)
		if k%every == 0 || k == n-1 && n <= maxWaveTicks {
			c.XTicks = append(c.XTicks, tick{col.X + col.W/2, itoa(w.Wave)})
		}
	}
	for _, t := range niceTicks(0, 1, 4) {
		c.YTicks = append(c.YTicks, tick{scale(t, 0, 1, plotBottom, plotTop), pct(t)})
	}
	return c
}
