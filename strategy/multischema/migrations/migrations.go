// Package migrations holds multischema's versioned migrations, run with
// pressly/goose: Shared once in the database's public schema, Tenant in
// each tenant's schema (with a version table of its own there). It is a
// package of its own so that the deployment audit can read which
// migrations exist without importing the strategy.
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed shared/*.sql tenant/*.sql
var files embed.FS

// Shared returns the migrations of the public schema.
func Shared() fs.FS { return sub("shared") }

// Tenant returns the migrations of each tenant's schema.
func Tenant() fs.FS { return sub("tenant") }

func sub(dir string) fs.FS {
	f, err := fs.Sub(files, dir)
	if err != nil {
		panic(err) // the directories are embedded above
	}
	return f
}
