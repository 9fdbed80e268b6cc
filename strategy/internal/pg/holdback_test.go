package pg

import (
	"io/fs"
	"slices"
	"testing"
	"testing/fstest"
)

func TestWithoutNewest(t *testing.T) {
	files := fstest.MapFS{
		"00001_schema.sql": {Data: []byte("a")},
		"00002_more.sql":   {Data: []byte("b")},
		"00010_last.sql":   {Data: []byte("c")},
		"migrations.go":    {Data: []byte("package x")},
	}
	for _, tc := range []struct {
		n    int
		want []string
	}{
		{0, []string{"00001_schema.sql", "00002_more.sql", "00010_last.sql"}},
		{1, []string{"00001_schema.sql", "00002_more.sql"}},
		{2, []string{"00001_schema.sql"}},
		{5, nil},
	} {
		got, err := fs.Glob(WithoutNewest(files, tc.n), "*.sql")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("WithoutNewest(%d): glob = %v, want %v", tc.n, got, tc.want)
		}
		entries, err := fs.ReadDir(WithoutNewest(files, tc.n), ".")
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != len(tc.want)+1 { // and migrations.go
			t.Errorf("WithoutNewest(%d): ReadDir has %d entries, want %d", tc.n, len(entries), len(tc.want)+1)
		}
		if _, err := WithoutNewest(files, tc.n).Open("00010_last.sql"); (err == nil) != (tc.n == 0) {
			t.Errorf("WithoutNewest(%d): opening the newest: err = %v", tc.n, err)
		}
	}
}
