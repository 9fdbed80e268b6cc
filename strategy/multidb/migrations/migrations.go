// Package migrations holds multidb's versioned migrations, run
// with pressly/goose against each database (see internal/pg.Migrate). It
// is a package of its own so that the deployment audit can read which
// migrations exist without importing the strategy.
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed *.sql
var files embed.FS

// FS returns the migration files.
func FS() fs.FS { return files }
