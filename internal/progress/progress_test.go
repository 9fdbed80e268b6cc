package progress

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

func TestMeter(t *testing.T) {
	type update struct {
		done    int
		elapsed time.Duration
	}
	// 10 items of 100 units each, updated every 500ms.
	var updates []update
	for i := 1; i <= 10; i++ {
		updates = append(updates, update{i, time.Duration(i) * 500 * time.Millisecond})
	}
	tests := []struct {
		name  string
		mode  Mode
		lines int      // newline-terminated writes
		want  []string // in the output
		not   []string
	}{
		{"off", Off, 0, nil, []string{"items"}},
		// The first update, then one each LineEvery (2s), then the last.
		{"lines", Lines, 4, []string{"1/10 items  10%", "10/10 items 100%", "200 rows/s", "ETA 0s"}, []string{"\r", "["}},
		{"bar", Bar, 1, []string{"\r[===", "10/10 items 100%", "ETA 0s", "\033[K"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			m := New(&out, tt.mode, "items", "rows")
			for _, u := range updates {
				m.Update(u.done, 10, u.done*100, u.elapsed)
			}
			m.Finish()
			got := out.String()
			if n := strings.Count(got, "\n"); n != tt.lines {
				t.Errorf("%d lines, want %d:\n%q", n, tt.lines, got)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("output lacks %q:\n%q", w, got)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(got, w) {
					t.Errorf("output has %q:\n%q", w, got)
				}
			}
		})
	}
}

func TestETA(t *testing.T) {
	m := New(nil, Lines, "accounts", "rows")
	if got := m.line(25, 100, 2500, 10*time.Second); !strings.Contains(got, "ETA 30s") || !strings.Contains(got, "250 rows/s") {
		t.Errorf("a quarter done in 10s: %q, want ETA 30s at 250 rows/s", got)
	}
}

func TestModeFor(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, tt := range []struct {
		quiet bool
		want  Mode
	}{{false, Lines}, {true, Off}} {
		if got := ModeFor(f, tt.quiet); got != tt.want {
			t.Errorf("ModeFor(a file, quiet=%v) = %v, want %v", tt.quiet, got, tt.want)
		}
	}
	if got := ModeFor(&bytes.Buffer{}, false); got != Lines {
		t.Errorf("ModeFor(a buffer) = %v, want Lines", got)
	}
}
