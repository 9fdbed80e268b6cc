package compare

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// sweepChartSpec is a chart of one or more measures against the number of
// tenants: a line per strategy and measure, colour by strategy, dash by
// measure.
type sweepChartSpec struct {
	Title   string
	YTitle  string
	Kind    valueKind
	Metrics []sweepMeasure
}

// sweepInset keeps the smallest and largest sizes off the chart's edges,
// so that their points and tick labels are not cut by the axes.
const sweepInset = 24.0

// sweepLift keeps the bottom of a log or share axis off the x axis line.
const sweepLift = 10.0

// sweepXScale places a number of tenants on a log axis: the smallest size
// measured at the left, the largest at the right.
func sweepXScale(runs []SizeRun) chartScale {
	a := newPlotArea()
	return chartScale{
		lo: float64(runs[0].Tenants), hi: float64(runs[len(runs)-1].Tenants), log: true,
		from: a.left + sweepInset, to: a.right - sweepInset,
	}
}

// sweepCharts draws a figure's charts; there are none for fewer than two
// sizes, and none for a spec with no figure to draw.
func sweepCharts(r Report, f sweepFigure) []svgChart {
	runs := sweepRuns(r)
	if len(runs) < 2 {
		return nil
	}
	var out []svgChart
	for _, spec := range f.charts {
		if c, ok := sweepChart(spec, runs, seriesNames(r)); ok {
			out = append(out, c)
		}
	}
	return out
}

// sweepPoint is one value of a strategy's measure at one size.
type sweepPoint struct {
	tenants int
	value   sweepValue
}

type sweepLine struct {
	series, metric int
	name           string // strategy
	points         []sweepPoint
}

func sweepChart(spec sweepChartSpec, runs []SizeRun, names []string) (svgChart, bool) {
	c := newChart(spec.Title)
	if len(runs) < 2 || len(spec.Metrics) == 0 || runs[0].Tenants <= 0 {
		return c, false
	}
	var lines []sweepLine
	var values []float64
	for m, measure := range spec.Metrics {
		for i, name := range names {
			l := sweepLine{series: i, metric: m, name: name}
			for _, run := range runs {
				s, ok := strategyAt(run, name)
				if !ok {
					l.points = append(l.points, sweepPoint{run.Tenants, noValue("not run")})
					continue
				}
				v := measure.Value(s)
				if v.OK && (math.IsNaN(v.V) || math.IsInf(v.V, 0)) {
					v = noValue("")
				}
				if v.OK {
					values = append(values, v.V)
				}
				l.points = append(l.points, sweepPoint{run.Tenants, v})
			}
			lines = append(lines, l)
		}
	}
	a := newPlotArea()
	// The key of line styles goes top left, the strategies top right; when
	// they would meet, the key takes a row of its own above the plot.
	// Whether the axis is log decides which points can be drawn (no 0 on a
	// log axis), and so which strategies the legend names; the plot area
	// only moves the axis, not that.
	first, ok := sweepYAxis(spec.Kind, values, a)
	if !ok {
		return c, false
	}
	drawable := func(v sweepValue) bool { return v.OK && (!first.scale.log || v.V > 0) }
	hasValue := map[int]bool{}
	for _, l := range lines {
		for _, p := range l.points {
			hasValue[l.series] = hasValue[l.series] || drawable(p.value)
		}
	}
	c.sweepLegend(names, hasValue)
	keyY := 18.0
	if len(spec.Metrics) > 1 {
		kx := marginLeft
		for m, measure := range spec.Metrics {
			c.Keys = append(c.Keys, svgKey{X: kx, Y: keyY, Metric: m, Name: measure.Name})
			kx += 46 + 6.5*float64(len([]rune(measure.Name)))
		}
		legendX := chartWidth - marginRight
		for _, item := range c.Legend {
			legendX = min(legendX, item.X)
		}
		if kx > legendX {
			a.top += 16
			for i := range c.Keys {
				c.Keys[i].Y = 34
			}
		}
	}
	y, _ := sweepYAxis(spec.Kind, values, a)
	x := sweepXScale(runs)
	yTitle := spec.YTitle + y.note
	c.frame(a, "tenants (log scale)", yTitle)
	if y.scale.log {
		c.Title += " (log scale on both axes)"
	} else {
		c.Title += " (tenants on a log scale)"
	}
	for i, v := range y.ticks {
		c.yTick(a, y.scale.at(v), y.labels[i])
	}
	for _, run := range runs {
		c.xTick(a, x.at(float64(run.Tenants)), groupDigits(int64(run.Tenants)))
	}

	var desc []string
	unplotted := false
	for _, l := range lines {
		var seg []string
		flush := func() {
			if len(seg) >= 2 {
				c.Curves = append(c.Curves, svgCurve{Points: strings.Join(seg, " "), Series: l.series, Metric: l.metric,
					Tip: l.name + ", " + spec.Metrics[l.metric].Name})
			}
			seg = nil
		}
		var said []string
		for _, p := range l.points {
			said = append(said, p.value.Text+" at "+tenantsLabel(p.tenants))
			if !drawable(p.value) {
				unplotted = unplotted || p.value.OK
				flush()
				continue
			}
			px, py := x.at(float64(p.tenants)), y.scale.at(p.value.V)
			seg = append(seg, svgPoint(px, py))
			c.Dots = append(c.Dots, svgDot{X: px, Y: py, Series: l.series, Metric: l.metric,
				Tip: fmt.Sprintf("%s, %s at %s: %s", l.name, spec.Metrics[l.metric].Name, tenantsLabel(p.tenants), p.value.Text)})
		}
		flush()
		label := l.name
		if len(spec.Metrics) > 1 {
			label += ", " + spec.Metrics[l.metric].Name
		}
		desc = append(desc, label+": "+strings.Join(said, ", ")+".")
	}
	if len(c.Dots) == 0 {
		return c, false
	}
	var scales string
	if !y.scale.log && y.note != "" {
		scales = " The " + spec.YTitle + " axis is linear" + y.note + "."
	}
	if unplotted {
		scales += " Zero values cannot be drawn on a log scale and are left out."
		c.Labels = append(c.Labels, svgText{X: a.right, Y: chartHeight - 8, Anchor: "end", Class: "value", Text: "0 not drawn: a log scale has no 0"})
	}
	c.Desc = c.Title + "." + scales + " " + strings.Join(desc, " ")
	return c, true
}

// sweepLegend lists the strategies that have a figure, top right, in
// colour order.
func (c *svgChart) sweepLegend(names []string, drawn map[int]bool) {
	x := chartWidth - marginRight
	for i := len(names) - 1; i >= 0; i-- {
		if !drawn[i] {
			continue
		}
		x -= 24 + 7.5*float64(len([]rune(names[i])))
		c.Legend = append(c.Legend, svgLegendItem{X: x, Y: 12, Series: i, Name: names[i]})
	}
}

// sweepAxis is a chart's vertical axis: its scale, ticks and their
// labels, and a note for the axis title when it does not start at zero.
type sweepAxis struct {
	scale  chartScale
	ticks  []float64
	labels []string
	note   string
}

// sweepYAxis fits an axis to the values: log once they span a factor of
// 10 or more (times, sizes and catalogs over 10 to 1,000 tenants do),
// linear from zero otherwise, and for a share linear up to 100% from just
// below the smallest. False when there is nothing to draw.
func sweepYAxis(kind valueKind, values []float64, a plotArea) (sweepAxis, bool) {
	if len(values) == 0 {
		return sweepAxis{}, false
	}
	lo, hi := math.Inf(1), 0.0
	for _, v := range values {
		if v > 0 {
			lo = min(lo, v)
		}
		hi = max(hi, v)
	}
	if kind == kindShare {
		spread, step := niceMax((1-min(lo, 1))*1.1, 5)
		if 1-min(lo, 1) <= 0 {
			spread, step = 0.01, 0.002
		}
		bottom := max(1-spread, 0)
		ax := sweepAxis{scale: chartScale{lo: bottom, hi: 1, from: a.bottom - sweepLift, to: a.top}}
		if bottom > 0 {
			ax.note = fmt.Sprintf(" (axis from %s)", shareTick(bottom, step))
		}
		for _, t := range linearTicks(spread, step) {
			v := 1 - t
			ax.ticks = append(ax.ticks, v)
			ax.labels = append(ax.labels, shareTick(v, step))
		}
		return ax, true
	}
	if hi > 0 && lo > 0 && hi/lo >= 10 {
		bottom, top := ladderFloor(kind, lo), ladderCeil(kind, hi)
		// Lifted off the axis, as the sizes are kept off the sides, so that
		// a point at the bottom tick is not hidden by the axis line.
		ax := sweepAxis{scale: chartScale{lo: bottom, hi: top, log: true, from: a.bottom - sweepLift, to: a.top}, note: " (log scale)"}
		for _, t := range thinTicks(ladder(kind, bottom, top)) {
			ax.ticks = append(ax.ticks, t)
			ax.labels = append(ax.labels, logTickLabel(kind, t))
		}
		return ax, true
	}
	unit, unitName := linearUnit(kind, hi)
	top, step := niceMax(hi/unit*1.1, 5)
	ax := sweepAxis{scale: chartScale{lo: 0, hi: top * unit, from: a.bottom, to: a.top}}
	for _, t := range linearTicks(top, step) {
		ax.ticks = append(ax.ticks, t*unit)
		label := tickLabel(t, step) + unitName
		if kind == kindDuration {
			label = durationTick(t * unit)
		}
		ax.labels = append(ax.labels, label)
	}
	return ax, true
}

// linearUnit is the unit a linear axis of sizes counts in (kB, MB, GB),
// so that its ticks are round in it; other kinds count in their own unit.
func linearUnit(kind valueKind, hi float64) (float64, string) {
	if kind != kindBytes {
		return 1, ""
	}
	unit, name := 1.0, " B"
	for _, u := range []string{" kB", " MB", " GB", " TB"} {
		if hi < unit*1024 {
			break
		}
		unit, name = unit*1024, u
	}
	return unit, name
}

// ladder is the round values of an axis within [lo, hi]: 1, 2 and 5 times
// a power of ten, and for sizes 1, 2, 5, 10, 20, 50, 100, 200 and 500
// times a power of 1024, so that ticks read 512 MB or 1 GB, never
// 0.98 GB.
func ladder(kind valueKind, lo, hi float64) []float64 {
	var out []float64
	add := func(v float64) {
		if v >= lo*0.9999 && v <= hi*1.0001 {
			out = append(out, v)
		}
	}
	if kind == kindBytes {
		for unit := 1.0; unit <= hi*1.0001; unit *= 1024 {
			for _, m := range []float64{1, 2, 5, 10, 20, 50, 100, 200, 500} {
				add(m * unit)
			}
		}
		return out
	}
	for mag := math.Pow(10, math.Floor(math.Log10(lo))); mag <= hi*1.0001; mag *= 10 {
		for _, m := range []float64{1, 2, 5} {
			add(m * mag)
		}
	}
	return out
}

// ladderFloor is the largest round value at or below v, ladderCeil the
// smallest at or above it.
func ladderFloor(kind valueKind, v float64) float64 {
	steps := ladder(kind, v/20, v)
	if len(steps) == 0 {
		return v
	}
	return steps[len(steps)-1]
}

func ladderCeil(kind valueKind, v float64) float64 {
	steps := ladder(kind, v, v*20)
	if len(steps) == 0 {
		return v
	}
	return steps[0]
}

// thinTicks drops the 2s of a ladder when it has more than eight ticks, so
// that the labels do not crowd.
func thinTicks(ticks []float64) []float64 {
	if len(ticks) <= 8 {
		return ticks
	}
	var out []float64
	for i, t := range ticks {
		lead := t / math.Pow(10, math.Floor(math.Log10(t)+1e-9))
		// The ends stay: they say where the axis starts and stops.
		if math.Abs(lead-2) > 0.01 || i == 0 || i == len(ticks)-1 {
			out = append(out, t)
		}
	}
	return out
}

func logTickLabel(kind valueKind, v float64) string {
	switch kind {
	case kindDuration:
		return durationTick(v)
	case kindBytes:
		unit, name := linearUnit(kind, v)
		return trimFloat(v/unit) + name
	}
	if v >= 1 {
		return groupDigits(int64(math.Round(v)))
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// durationTick labels a time axis: as humanDuration below a minute, in
// whole seconds above, where 1m40s would hide that the tick is 100 s.
func durationTick(ns float64) string {
	d := time.Duration(ns)
	if d >= time.Minute {
		return groupDigits(int64(math.Round(d.Seconds()))) + " s"
	}
	return humanDuration(d)
}

func shareTick(v, step float64) string {
	decimals := 0
	if pct := step * 100; pct < 1 {
		decimals = int(math.Ceil(-math.Log10(pct) - 1e-9))
	}
	return strconv.FormatFloat(v*100, 'f', decimals, 64) + "%"
}
