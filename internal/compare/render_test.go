package compare

import (
	"testing"
	"time"
)

func TestRenderFormatDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0 s"},
		{500, "500 ns"},
		{840 * time.Microsecond, "840 µs"},
		{1234 * time.Microsecond, "1.23 ms"},
		{999_700 * time.Nanosecond, "1 ms"},
		{7300 * time.Millisecond, "7.3 s"},
		{92 * time.Second, "1m32s"},
	} {
		if got := humanDuration(tc.d); got != tc.want {
			t.Errorf("humanDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestRenderFormatBytes(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1536, "1.5 kB"},
		{345 << 20, "345 MB"},
		{3 << 40, "3 TB"},
		{5000 << 40, "5,000 TB"},
	} {
		if got := humanBytes(tc.n); got != tc.want {
			t.Errorf("humanBytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}
