// Package progress shows how far a long command has got: a bar redrawn in
// place with rate and ETA on a terminal, a plain line now and then when the
// output is a file or a pipe (logs stay readable), or nothing.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
)

// Mode is how progress is shown.
type Mode int

const (
	Off   Mode = iota // nothing
	Lines             // a line every LineEvery, and one at the end
	Bar               // one line redrawn in place
)

// ModeFor picks Bar when w is a terminal, Lines otherwise, Off when quiet.
func ModeFor(w io.Writer, quiet bool) Mode {
	switch {
	case quiet:
		return Off
	case isTerminal(w):
		return Bar
	default:
		return Lines
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// How often each mode writes; the last update always writes.
const (
	LineEvery = 2 * time.Second
	BarEvery  = 100 * time.Millisecond
	barWidth  = 30
)

// Meter counts items (e.g. accounts) towards a total and a rate of units
// (e.g. rows) per second. It is not safe for concurrent use.
type Meter struct {
	w          io.Writer
	mode       Mode
	item, unit string
	last       time.Duration // elapsed time of the last write
	drawn      bool
}

// New returns a Meter writing to w; item and unit are plural nouns.
func New(w io.Writer, mode Mode, item, unit string) *Meter {
	return &Meter{w: w, mode: mode, item: item, unit: unit}
}

// Update records that done of total items, holding units units, are done
// after elapsed, and writes if it is time to.
func (m *Meter) Update(done, total int, units int, elapsed time.Duration) {
	every := LineEvery
	switch m.mode {
	case Off:
		return
	case Bar:
		every = BarEvery
	}
	if done < total && m.drawn && elapsed-m.last < every {
		return
	}
	m.last, m.drawn = elapsed, true
	line := m.line(done, total, units, elapsed)
	if m.mode == Bar {
		fmt.Fprintf(m.w, "\r%s\033[K", line)
		if done >= total {
			fmt.Fprintln(m.w)
			m.drawn = false // the line is finished: Finish has nothing to end
		}
		return
	}
	fmt.Fprintln(m.w, line)
}

// Finish ends a bar that stopped short of its total, so that what is
// printed next starts on a line of its own.
func (m *Meter) Finish() {
	if m.mode == Bar && m.drawn {
		fmt.Fprintln(m.w)
		m.drawn = false
	}
}

func (m *Meter) line(done, total, units int, elapsed time.Duration) string {
	frac := 1.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(units) / s
	}
	eta := "--"
	if done > 0 && done < total {
		eta = (time.Duration(float64(elapsed) / frac * (1 - frac))).Round(time.Second).String()
	} else if done >= total {
		eta = "0s"
	}
	text := fmt.Sprintf("%d/%d %s %3.0f%%  %s %s/s  elapsed %s  ETA %s",
		done, total, m.item, 100*frac, human(rate), m.unit, elapsed.Round(100*time.Millisecond), eta)
	if m.mode != Bar {
		return text
	}
	filled := min(int(frac*barWidth), barWidth)
	return "[" + strings.Repeat("=", filled) + strings.Repeat(" ", barWidth-filled) + "] " + text
}

// human writes a rate with a k or M suffix.
func human(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}
