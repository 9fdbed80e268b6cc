package compare

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// svgChart is a chart reduced to shapes with coordinates, so the HTML
// template only places them and escapes every label. Coordinates are in
// SVG user units; Series picks the colour, the same per strategy in every
// chart. A chart is only made from data: the functions that make one say
// when there is none, and the page then says so in words.
type svgChart struct {
	Title string
	// Desc is the chart in words, for readers who cannot see it (SVG
	// <desc>); empty where the figures sit in a table beside the chart.
	Desc          string
	Width, Height float64
	Grid          []svgLine
	Axes          []svgLine
	Bars          []svgBar
	Curves        []svgCurve
	Dots          []svgDot
	Labels        []svgText
	Legend        []svgLegendItem
	// Keys name the line styles when a chart draws more than one figure
	// per strategy (solid, dashed, dotted: see Metric).
	Keys []svgKey
}

type svgLine struct{ X1, Y1, X2, Y2 float64 }

type svgBar struct {
	X, Y, W, H float64
	Series     int
	Tip        string
}

// svgCurve is a polyline; Series picks its colour and Metric its dash
// pattern (0 solid, 1 dashed, 2 dotted).
type svgCurve struct {
	Points string
	Series int
	Metric int
	Tip    string
}

// svgDot marks a point: filled for Metric 0, hollow otherwise; Tip is its
// value, shown on hover.
type svgDot struct {
	X, Y   float64
	Series int
	Metric int
	Tip    string
}

// svgKey is a sample of a line style and what it stands for.
type svgKey struct {
	X, Y   float64
	Metric int
	Name   string
}

type svgText struct {
	X, Y   float64
	Anchor string // start, middle or end
	Class  string
	Text   string
	Rotate bool // vertical axis titles
}

type svgLegendItem struct {
	X, Y   float64
	Series int
	Name   string
}

// Every chart shares one frame so that they line up on the page.
const (
	chartWidth   = 720.0
	chartHeight  = 320.0
	marginLeft   = 72.0
	marginRight  = 20.0
	marginTop    = 36.0
	marginBottom = 56.0
)

type plotArea struct{ left, right, top, bottom float64 }

func newPlotArea() plotArea {
	return plotArea{marginLeft, chartWidth - marginRight, marginTop, chartHeight - marginBottom}
}

func newChart(title string) svgChart {
	return svgChart{Title: title, Width: chartWidth, Height: chartHeight}
}

// chartScale maps a data range onto a pixel range, linearly or by log10. A
// degenerate or invalid range maps everything to the start, so no point is
// ever NaN.
type chartScale struct {
	lo, hi float64
	log    bool
	from   float64
	to     float64
}

func (s chartScale) at(v float64) float64 {
	lo, hi := s.lo, s.hi
	if s.log {
		if v <= 0 || lo <= 0 || hi <= 0 {
			return s.from
		}
		v, lo, hi = math.Log10(v), math.Log10(lo), math.Log10(hi)
	}
	if hi <= lo || math.IsNaN(v) || math.IsInf(v, 0) {
		return s.from
	}
	v = min(max(v, lo), hi)
	return finiteOrZero(s.from + (v-lo)/(hi-lo)*(s.to-s.from))
}

// niceMax rounds v up to 1, 2 or 5 times a power of ten and returns the
// step between n-ish ticks up to it; zero or bad input gives 1, so an
// empty chart still has an axis.
func niceMax(v float64, n int) (top, step float64) {
	if !(v > 0) || math.IsInf(v, 0) {
		return 1, 1.0 / float64(n)
	}
	raw := v / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step = 10 * mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	return math.Ceil(v/step) * step, step
}

// linearTicks are 0, step, 2×step … up to top, each computed rather than
// summed so that rounding errors do not pile up into labels like
// 0.30000000000000004.
func linearTicks(top, step float64) []float64 {
	if !(step > 0) || !(top >= 0) || math.IsInf(top, 0) {
		return []float64{0}
	}
	var out []float64
	for i := 0; float64(i)*step <= top*1.0001 && i <= 100; i++ {
		out = append(out, float64(i)*step)
	}
	return out
}

// tickLabel prints v with as many decimals as the step between ticks
// needs.
func tickLabel(v, step float64) string {
	decimals := 0
	if step > 0 && step < 1 {
		decimals = int(math.Ceil(-math.Log10(step) - 1e-9))
	}
	if decimals == 0 {
		return groupDigits(int64(math.Round(v)))
	}
	return strconv.FormatFloat(v, 'f', decimals, 64)
}

// logTicks are the 1-2-5 values of each decade within [lo, hi].
func logTicks(lo, hi float64) []float64 {
	if !(lo > 0) || !(hi >= lo) || math.IsInf(hi, 0) {
		return nil
	}
	var out []float64
	for mag := math.Pow(10, math.Floor(math.Log10(lo))); mag <= hi; mag *= 10 {
		for _, m := range []float64{1, 2, 5} {
			if v := m * mag; v >= lo*0.999 && v <= hi*1.001 {
				out = append(out, v)
			}
		}
	}
	return out
}

func (c *svgChart) frame(a plotArea, xTitle, yTitle string) {
	c.Axes = append(c.Axes,
		svgLine{a.left, a.bottom, a.right, a.bottom},
		svgLine{a.left, a.top, a.left, a.bottom})
	c.Labels = append(c.Labels,
		svgText{X: (a.left + a.right) / 2, Y: chartHeight - 8, Anchor: "middle", Class: "axis-title", Text: xTitle},
		svgText{X: 16, Y: (a.top + a.bottom) / 2, Anchor: "middle", Class: "axis-title", Text: yTitle, Rotate: true})
}

func (c *svgChart) yTick(a plotArea, y float64, label string) {
	c.Grid = append(c.Grid, svgLine{a.left, y, a.right, y})
	c.Labels = append(c.Labels, svgText{X: a.left - 6, Y: y + 4, Anchor: "end", Class: "tick", Text: label})
}

func (c *svgChart) xTick(a plotArea, x float64, label string) {
	c.Grid = append(c.Grid, svgLine{x, a.top, x, a.bottom})
	c.Labels = append(c.Labels, svgText{X: x, Y: a.bottom + 16, Anchor: "middle", Class: "tick", Text: label})
}

// legend lists the strategies across the top right, in run order.
func (c *svgChart) legend(names []string) {
	x := chartWidth - marginRight
	for i := len(names) - 1; i >= 0; i-- {
		x -= 24 + 7.5*float64(len([]rune(names[i])))
		c.Legend = append(c.Legend, svgLegendItem{X: x, Y: 12, Series: i, Name: names[i]})
	}
}

// throughputChart is req/s per Load kind, one bar per strategy; false
// when no load ran.
func throughputChart(r Report) (svgChart, bool) {
	c := newChart("Throughput per page (requests answered OK per second)")
	ks := reportedKinds(r)
	ran := false
	for _, s := range r.Strategies {
		ran = ran || len(s.Loads) > 0
	}
	if !ran {
		return c, false
	}
	a := newPlotArea()
	top := 0.0
	for _, s := range r.Strategies {
		for _, l := range s.Loads {
			top = max(top, finiteOrZero(l.Throughput))
		}
	}
	// Headroom above the tallest bar for its value label.
	top, step := niceMax(top*1.1, 5)
	y := chartScale{lo: 0, hi: top, from: a.bottom, to: a.top}
	c.frame(a, "page", "req/s")
	for _, v := range linearTicks(top, step) {
		c.yTick(a, y.at(v), tickLabel(v, step))
	}
	group := (a.right - a.left) / float64(len(ks))
	bar := group * 0.8 / float64(len(r.Strategies))
	for g, kind := range ks {
		x0 := a.left + float64(g)*group + group*0.1
		for i, s := range r.Strategies {
			x := x0 + float64(i)*bar
			l, ok := findLoad(s, kind)
			if !ok {
				missing := "no data"
				if s.Skipped[kind] != "" {
					missing = "skipped"
				}
				c.Labels = append(c.Labels, svgText{X: x + bar/2, Y: a.bottom - 4, Anchor: "middle", Class: "value", Text: missing})
				continue
			}
			v := finiteOrZero(l.Throughput)
			c.Bars = append(c.Bars, svgBar{X: x, Y: y.at(v), W: bar - 2, H: a.bottom - y.at(v), Series: i,
				Tip: s.Name + ", " + kind + ": " + humanRate(v) + " req/s"})
			c.Labels = append(c.Labels, svgText{X: x + bar/2, Y: y.at(v) - 4, Anchor: "middle", Class: "value", Text: humanRate(v)})
		}
		for j, line := range splitKind(kind) {
			c.Labels = append(c.Labels, svgText{X: x0 + group*0.4, Y: a.bottom + 16 + float64(j)*13, Anchor: "middle", Class: "tick", Text: line})
		}
	}
	c.legend(strategyNames(r))
	return c, true
}

// splitKind breaks a kind such as "largest tenant, last page" at its
// comma, so that group labels fit under their bars.
func splitKind(kind string) []string {
	if before, after, ok := strings.Cut(kind, ", "); ok {
		return []string{before + ",", after}
	}
	return []string{kind}
}

// throughputOverTimeChart is requests answered OK in each second of the
// any-page load, one line per strategy that counted them; false when none
// did (wrk reports no per-second counts).
func throughputOverTimeChart(r Report) (svgChart, bool) {
	c := newChart("Throughput over time: " + LoadAnyPage)
	seconds, top := 0, 0
	for _, s := range r.Strategies {
		if l, ok := findLoad(s, LoadAnyPage); ok {
			seconds = max(seconds, len(l.PerSecond))
			for _, n := range l.PerSecond {
				top = max(top, n)
			}
		}
	}
	if seconds == 0 {
		return c, false
	}
	a := newPlotArea()
	yTop, yStep := niceMax(float64(top), 5)
	xTop, xStep := niceMax(float64(seconds), 8)
	x := chartScale{lo: 0, hi: xTop, from: a.left, to: a.right}
	y := chartScale{lo: 0, hi: yTop, from: a.bottom, to: a.top}
	c.frame(a, "second of the load", "req/s")
	for _, v := range linearTicks(yTop, yStep) {
		c.yTick(a, y.at(v), tickLabel(v, yStep))
	}
	for _, v := range linearTicks(xTop, xStep) {
		c.xTick(a, x.at(v), tickLabel(v, xStep))
	}
	for i, s := range r.Strategies {
		l, ok := findLoad(s, LoadAnyPage)
		if !ok || len(l.PerSecond) == 0 {
			continue
		}
		var pts []string
		for sec, n := range l.PerSecond {
			// Each count covers the second that ends at sec+1.
			px, py := x.at(float64(sec+1)), y.at(float64(n))
			pts = append(pts, svgPoint(px, py))
			if len(l.PerSecond) == 1 {
				c.Dots = append(c.Dots, svgDot{X: px, Y: py, Series: i})
			}
		}
		c.Curves = append(c.Curves, svgCurve{Points: strings.Join(pts, " "), Series: i, Tip: s.Name})
	}
	c.legend(strategyNames(r))
	return c, true
}

func svgPoint(x, y float64) string {
	return svgCoord(x) + "," + svgCoord(y)
}

// svgCoord prints a coordinate to a tenth of a unit, finer than a screen
// shows; never NaN or Inf.
func svgCoord(v float64) string {
	return strconv.FormatFloat(finiteOrZero(v), 'f', 1, 64)
}

// cdfPoint is the share of requests at or below a latency.
type cdfPoint struct {
	latency time.Duration
	share   float64
}

// histogramCDF turns a histogram into a cumulative curve through each
// bucket's upper edge. The last bucket holds everything above the bound
// before it, so its real edge is the load's uncorrected maximum when that
// is larger; the curve starts at the lower edge of the first non-empty
// bucket, at zero.
func histogramCDF(h Histogram, rawMax time.Duration) []cdfPoint {
	total := 0
	for _, n := range h.Counts {
		total += max(n, 0)
	}
	if total == 0 || len(h.Bounds) == 0 {
		return nil
	}
	upper := func(i int) time.Duration {
		if i < len(h.Bounds) {
			if i == len(h.Counts)-1 {
				return max(h.Bounds[i], rawMax)
			}
			return h.Bounds[i]
		}
		// More counts than bounds: an overflow bucket past the last bound.
		return max(h.Bounds[len(h.Bounds)-1]*2, rawMax)
	}
	var out []cdfPoint
	seen := 0
	for i, n := range h.Counts {
		if n <= 0 && len(out) == 0 {
			continue
		}
		if len(out) == 0 {
			lower := upper(i) / 2
			if i > 0 {
				lower = upper(i - 1)
			}
			out = append(out, cdfPoint{lower, 0})
		}
		seen += max(n, 0)
		out = append(out, cdfPoint{upper(i), float64(seen) / float64(total)})
	}
	return out
}

// tailScale stretches the top of a cumulative curve: 50%, 90%, 99% and
// 99.9% are equally far apart, as latency tails deserve. Shares of 1 sit
// at the top, 99.9%.
func tailScale(share float64) float64 {
	if share >= 0.999 {
		return 3
	}
	return -math.Log10(1 - max(share, 0))
}

// latencyChart is the latency distribution of one Load kind, one curve
// per strategy that ran it; false when no strategy has a histogram of it.
func latencyChart(r Report, kind string) (svgChart, bool) {
	c := newChart("Latency distribution: " + kind)
	curves := map[int][]cdfPoint{}
	var lo, hi time.Duration
	for i, s := range r.Strategies {
		l, ok := findLoad(s, kind)
		if !ok {
			continue
		}
		pts := histogramCDF(l.Histogram, l.Raw.Max)
		if len(pts) == 0 {
			continue
		}
		curves[i] = pts
		if lo == 0 || pts[0].latency < lo {
			lo = pts[0].latency
		}
		hi = max(hi, pts[len(pts)-1].latency)
	}
	if len(curves) == 0 || hi <= 0 {
		return c, false
	}
	lo = max(lo, 1)
	a := newPlotArea()
	// A log axis once the range spans more than a factor of 20: otherwise
	// the fast majority is squeezed into a few pixels by the tail.
	logAxis := float64(hi)/float64(lo) > 20
	x := chartScale{lo: float64(lo), hi: float64(hi), log: logAxis, from: a.left, to: a.right}
	y := chartScale{lo: 0, hi: 3, from: a.bottom, to: a.top}
	xTitle := "latency (uncorrected)"
	if logAxis {
		xTitle += ", log scale"
	}
	c.frame(a, xTitle, "requests at or below")
	for _, t := range []struct {
		share float64
		label string
	}{{0, "0%"}, {0.5, "50%"}, {0.9, "90%"}, {0.99, "99%"}, {0.999, "99.9%"}} {
		c.yTick(a, y.at(tailScale(t.share)), t.label)
	}
	for _, v := range latencyTicks(float64(lo), float64(hi), logAxis) {
		c.xTick(a, x.at(v), humanDuration(time.Duration(v)))
	}
	for i := range r.Strategies {
		pts, ok := curves[i]
		if !ok {
			continue
		}
		var ps []string
		for _, p := range pts {
			ps = append(ps, svgPoint(x.at(float64(p.latency)), y.at(tailScale(p.share))))
		}
		c.Curves = append(c.Curves, svgCurve{Points: strings.Join(ps, " "), Series: i, Tip: r.Strategies[i].Name})
	}
	c.legend(strategyNames(r))
	return c, true
}

// latencyTicks are 1-2-5 ticks on a log axis, or about six even ones on a
// linear axis, in nanoseconds.
func latencyTicks(lo, hi float64, logAxis bool) []float64 {
	if logAxis {
		ticks := logTicks(lo, hi)
		if len(ticks) > 10 { // many decades: 1s and 5s are enough
			var fewer []float64
			for _, t := range ticks {
				if m := t / math.Pow(10, math.Floor(math.Log10(t))); math.Abs(m-2) > 0.01 {
					fewer = append(fewer, t)
				}
			}
			ticks = fewer
		}
		return ticks
	}
	top, step := niceMax(hi, 6)
	var out []float64
	for _, v := range linearTicks(top, step) {
		if v >= lo*0.999 && v <= hi*1.001 {
			out = append(out, v)
		}
	}
	return out
}

// charts are the page's charts, each drawn from data, and a sentence for
// each chart left out for want of it.
func charts(r Report) (out []svgChart, notes []string) {
	if c, ok := throughputChart(r); ok {
		out = append(out, c)
	}
	if c, ok := throughputOverTimeChart(r); ok {
		out = append(out, c)
	} else if ranKind(r, LoadAnyPage) {
		notes = append(notes, fmt.Sprintf("No throughput-over-time chart: the load generator counted no requests per second for the load %q (wrk reports none).", LoadAnyPage))
	}
	for _, kind := range reportedKinds(r) {
		if c, ok := latencyChart(r, kind); ok {
			out = append(out, c)
		} else if ranKind(r, kind) {
			notes = append(notes, fmt.Sprintf("No latency chart for the load %q: no request latencies were recorded.", kind))
		}
	}
	return out, notes
}

// ranKind says whether any strategy ran a load of the kind.
func ranKind(r Report, kind string) bool {
	for _, s := range r.Strategies {
		if _, ok := findLoad(s, kind); ok {
			return true
		}
	}
	return false
}
