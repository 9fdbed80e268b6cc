package pg

import (
	"io/fs"
	"path"
	"slices"
	"strings"
)

// WithoutNewest returns fsys without its newest n migrations (the last n
// *.sql files at its root, by name: goose's numbered names sort by
// version), so that Setup and Migrate leave them pending. compare uses it
// to time the newest migration, a real schema change, on its own; n <= 0
// returns fsys.
func WithoutNewest(fsys fs.FS, n int) fs.FS {
	if n <= 0 {
		return fsys
	}
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil || len(names) == 0 {
		return fsys // goose reports the problem when it reads fsys
	}
	slices.Sort(names)
	hidden := map[string]bool{}
	for _, name := range names[max(0, len(names)-n):] {
		hidden[name] = true
	}
	return withoutFiles{FS: fsys, hidden: hidden}
}

type withoutFiles struct {
	fs.FS
	hidden map[string]bool
}

func (w withoutFiles) Open(name string) (fs.File, error) {
	if w.hidden[name] {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return w.FS.Open(name)
}

func (w withoutFiles) ReadDir(name string) ([]fs.DirEntry, error) {
	entries, err := fs.ReadDir(w.FS, name)
	return slices.DeleteFunc(entries, func(e fs.DirEntry) bool { return w.hidden[path.Join(name, e.Name())] }), err
}

func (w withoutFiles) Glob(pattern string) ([]string, error) {
	names, err := fs.Glob(w.FS, pattern)
	return slices.DeleteFunc(names, func(n string) bool { return w.hidden[n] }), err
}

// CountFrom is how many of fsys's migrations there are from the one whose
// name ends with suffix on, the newest included: the HoldBackMigrations
// that leaves that one and every later one unapplied. 0 when none ends so.
func CountFrom(fsys fs.FS, suffix string) int {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return 0
	}
	slices.Sort(names)
	for i, name := range names {
		if strings.HasSuffix(name, suffix) {
			return len(names) - i
		}
	}
	return 0
}
