package compare

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// humanDuration prints d to three significant figures in the largest unit
// that keeps it at least 1 (840 µs, 1.23 ms, 7.3 s); a minute or more is
// rounded to the second, where more precision would only be noise.
func humanDuration(d time.Duration) string {
	if d <= 0 {
		return "0 s"
	}
	if d >= time.Minute {
		return d.Round(time.Second).String()
	}
	units := []struct {
		size time.Duration
		name string
	}{{time.Nanosecond, "ns"}, {time.Microsecond, "µs"}, {time.Millisecond, "ms"}, {time.Second, "s"}}
	for i := len(units) - 1; i >= 0; i-- {
		u := units[i]
		if d < u.size {
			continue
		}
		v := float64(d) / float64(u.size)
		s := threeFigures(v)
		// 999.6 µs rounds to "1000": say 1 ms instead.
		if s == "1000" && i+1 < len(units) {
			return "1 " + units[i+1].name
		}
		return s + " " + u.name
	}
	return strconv.FormatInt(int64(d), 10) + " ns"
}

// threeFigures prints v (expected in [1, 1000)) to three significant
// figures without trailing zeros.
func threeFigures(v float64) string {
	decimals := 0
	switch {
	case v < 10:
		decimals = 2
	case v < 100:
		decimals = 1
	}
	s := strconv.FormatFloat(v, 'f', decimals, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// humanBytes prints n in 1024-based units labelled as pg_size_pretty
// labels them (kB, MB, GB), so sizes read the same as in psql.
func humanBytes(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	v := float64(n)
	for _, unit := range []string{"kB", "MB", "GB", "TB"} {
		v /= 1024
		if v < 1000 || unit == "TB" {
			if v >= 1000 {
				return groupDigits(int64(math.Round(v))) + " " + unit
			}
			return threeFigures(v) + " " + unit
		}
	}
	return "" // unreachable: TB returns above
}

// humanMB prints a size in KiB as megabytes with one decimal, the
// precision at which a server's resident memory is worth comparing.
func humanMB(kib int64) string {
	return strconv.FormatFloat(float64(kib)/1024, 'f', 1, 64)
}

// humanCount prints n with thousands separators.
func humanCount(n int64) string {
	return groupDigits(n)
}

// humanRate prints a per-second rate: whole numbers once they are large
// enough that decimals only add noise.
func humanRate(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0) || v <= 0:
		return "0"
	case v >= 100:
		return groupDigits(int64(math.Round(v)))
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

// humanRatio prints a ratio such as 3.2×.
func humanRatio(v float64) string {
	if v >= 100 {
		return groupDigits(int64(math.Round(v))) + "×"
	}
	if v >= 10 {
		return strconv.FormatFloat(v, 'f', 0, 64) + "×"
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + "×"
}

func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return sign + b.String()
}

// ratePerSecond is n over d, or 0 when d is zero, so that no rate is NaN or
// infinite.
func ratePerSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// finiteOrZero replaces NaN and infinities with 0: a chart that shows a wrong
// point at zero is better than an SVG a browser refuses to draw.
func finiteOrZero(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// joinAnd joins items as a sentence lists them: "a", "a and b", "a, b and c".
func joinAnd(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}
