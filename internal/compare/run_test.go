package compare

import "testing"

// TestColdIndex: the cold tenant is never the largest, whose pages the
// loads sign in to and ask for; a largest tenant last by id once made
// both of its loads fail with 401s.
func TestColdIndex(t *testing.T) {
	for _, tc := range []struct {
		name    string
		slugs   []string
		largest string
		want    int
	}{
		{"the last by id", []string{"tenant-0", "tenant-1", "tenant-2"}, "tenant-0", 2},
		{"the largest is the last", []string{"tenant-0", "tenant-1", "tenant-2"}, "tenant-2", 1},
		{"two, the largest last", []string{"tenant-0", "tenant-1"}, "tenant-1", 0},
		{"one tenant: none to spare", []string{"tenant-0"}, "tenant-0", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := coldIndex(facts{slugs: tc.slugs, largest: tc.largest}); got != tc.want {
				t.Errorf("coldIndex(%v, largest %s) = %d, want %d", tc.slugs, tc.largest, got, tc.want)
			}
		})
	}
}
