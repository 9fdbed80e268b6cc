package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"tenancy/configs"
	"tenancy/internal/tenantfile"
)

// newArgFlagSet is newFlagSet for a command that takes one argument
// (shown as arg in its usage).
func newArgFlagSet(name, arg, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: tenancy %s %s [flags]\n\n%s\n\nFlags:\n", name, arg, synopsis)
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "\n%s", configs.Help())
	}
	return fs
}

// parseFlagsAndArg is parseFlags for a command that takes exactly one
// argument, before or after its flags.
func parseFlagsAndArg(fs *flag.FlagSet, args []string, what string, stdout io.Writer) (arg string, help bool, err error) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") || len(args) > 0 && args[0] == "-" {
		arg, args = args[0], args[1:]
	}
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return "", true, nil
		}
		return "", false, usageError{fmt.Errorf("%s: %w (see `tenancy %s --help`)", fs.Name(), err, fs.Name())}
	}
	rest := fs.Args()
	if arg == "" && len(rest) > 0 {
		arg, rest = rest[0], rest[1:]
	}
	switch {
	case arg == "":
		return "", false, usageError{fmt.Errorf("%s: no %s given (see `tenancy %s --help`)", fs.Name(), what, fs.Name())}
	case len(rest) > 0:
		return "", false, usageError{fmt.Errorf("%s: unexpected argument %q (see `tenancy %s --help`)", fs.Name(), rest[0], fs.Name())}
	}
	return arg, false, nil
}

func runTenantExport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newArgFlagSet("tenant export", "<slug>", `Writes one tenant to a file that any strategy can import (tenancy tenant
import): a tar archive of manifest.json and one file per table in PostgreSQL's
COPY text format, read from one consistent snapshot, so the tenant may be in
use meanwhile. The file is written whole or not at all. The manifest holds the
tenant's seed checksum, which does not depend on ids or strategy.`)
	out := fs.String("o", "", "the file to write (- for standard output); required")
	compress := fs.Bool("gzip", false, "gzip the file (the default when its name ends in .gz or .tgz)")
	slug, help, err := parseFlagsAndArg(fs, args, "tenant slug", stdout)
	if help || err != nil {
		return err
	}
	if *out == "" {
		return usageError{errors.New("tenant export: -o <file> is required (- writes to standard output)")}
	}
	if !flagGiven(fs, "gzip") {
		*compress = strings.HasSuffix(*out, ".gz") || strings.HasSuffix(*out, ".tgz")
	}
	_, admin, err := openAdmin(getenv, stderr)
	if err != nil {
		return err
	}
	defer admin.Close()
	messages := stdout
	if *out == "-" {
		messages = stderr
	}
	fmt.Fprintf(messages, "export: reading %s from %s\n", slug, admin.Name())
	start := time.Now()
	var m tenantfile.Manifest
	var size int64
	if *out == "-" {
		cw := &countingWriter{w: stdout}
		m, err = tenantfile.Export(ctx, admin, slug, cw, *compress)
		size = cw.n
	} else {
		err = writeFileAtomically(*out, func(w io.Writer) error {
			cw := &countingWriter{w: w}
			var err error
			m, err = tenantfile.Export(ctx, admin, slug, cw, *compress)
			size = cw.n
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("tenant export: %w", err)
	}
	fmt.Fprintf(messages, "export: wrote %s (%s) from %s to %s in %s: %d rows (%s), %d bytes; checksum %s\n",
		m.Slug, m.Name, m.Strategy, *out, time.Since(start).Round(time.Millisecond), m.Rows(), m.Counts(), size, m.Checksum)
	return nil
}

func runTenantImport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newArgFlagSet("tenant import", "<file>", `Loads a tenant from a file that tenancy tenant export wrote, from any strategy,
into this deployment as a new tenant, in one transaction, with ids this
deployment gives; then reads it back and compares its checksum with the
file's. It refuses, writing nothing, a damaged or altered file (checksum
mismatch), a file of another format version, and a slug that already exists.
A new slug becomes a new tenant in every strategy: multidb makes its database
from the template and lists it in the directory once the rows are in,
multischema makes its schema and role; an import that fails leaves none of
it. <file> may be - for standard input.`)
	as := fs.String("as", "", "import under this slug instead of the file's")
	name := fs.String("name", "", "give the tenant this name instead of the file's")
	path, help, err := parseFlagsAndArg(fs, args, "file", stdout)
	if help || err != nil {
		return err
	}
	var in io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("tenant import: %w", err)
		}
		defer f.Close()
		in = f
	}
	_, admin, err := openAdmin(getenv, stderr)
	if err != nil {
		return err
	}
	defer admin.Close()
	fmt.Fprintf(stdout, "import: reading %s into %s\n", path, admin.Name())
	start := time.Now()
	res, err := tenantfile.Import(ctx, admin, in, tenantfile.ImportOptions{As: *as, Name: *name})
	if err != nil {
		return fmt.Errorf("tenant import: %w", err)
	}
	m := res.Manifest
	same := "the file's"
	if res.Checksum != m.Checksum {
		same = fmt.Sprintf("the file's was %s, before the new slug or name", m.Checksum)
	}
	fmt.Fprintf(stdout, "import: wrote %s (%s), exported from %s at %s, into %s as account %d in %s: %d rows (%s); read back with checksum %s (%s)\n",
		res.Account.Slug, res.Account.Name, m.Strategy, m.ExportedAt.Format(time.RFC3339), admin.Name(), res.Account.ID,
		time.Since(start).Round(time.Millisecond), res.Rows, m.Counts(), res.Checksum, same)
	return nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// writeFileAtomically writes path through a temporary file beside it,
// renamed into place only once write succeeded and the data is on disk:
// an export that fails leaves no file that looks like one.
func writeFileAtomically(path string, write func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := write(f); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
