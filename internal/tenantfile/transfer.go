package tenantfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"tenancy/models"
	"tenancy/strategy"
)

// ErrExists: the deployment already has a tenant with the slug an import
// would write. Nothing was written.
var ErrExists = errors.New("a tenant with this slug already exists")

// exporter is the admin's export, or ErrNotSupported.
func exporter(admin strategy.Admin) (strategy.TenantExporter, error) {
	ex, ok := admin.(strategy.TenantExporter)
	if !ok {
		return nil, fmt.Errorf("export from %s: %w", admin.Name(), strategy.ErrNotSupported)
	}
	return ex, nil
}

// snapshot reads tenant slug through ex into memory: the COPY text of
// each table, and the data Decode makes of it.
func snapshot(ctx context.Context, ex strategy.TenantExporter, slug string) (models.Account, [][]byte, *strategy.TenantData, error) {
	names := strategy.DataTables()
	bufs := make([]bytes.Buffer, len(names))
	acct, err := ex.ExportTenant(ctx, slug, func(name string) (io.Writer, error) {
		i := slices.Index(names, name)
		if i < 0 {
			return nil, fmt.Errorf("unknown table %q", name)
		}
		return &bufs[i], nil
	})
	if err != nil {
		return models.Account{}, nil, nil, err
	}
	tables := make([][]byte, len(names))
	for i := range bufs {
		tables[i] = bufs[i].Bytes()
	}
	d, err := Decode(tables)
	if err != nil {
		return acct, nil, nil, fmt.Errorf("tenant %s: the database gave rows this program cannot read back: %w", slug, err)
	}
	return acct, tables, d, nil
}

// Export writes tenant slug of admin's deployment to w as a tenant file,
// read from one snapshot (strategy.TenantExporter), and returns its
// manifest.
func Export(ctx context.Context, admin strategy.Admin, slug string, w io.Writer, compress bool) (Manifest, error) {
	ex, err := exporter(admin)
	if err != nil {
		return Manifest{}, err
	}
	_, tables, d, err := snapshot(ctx, ex, slug)
	if err != nil {
		return Manifest{}, err
	}
	m := NewManifest(admin.Name(), time.Now(), d, tables)
	if err := Write(w, m, tables, compress); err != nil {
		return m, fmt.Errorf("tenant %s: write the file: %w", slug, err)
	}
	return m, nil
}

// ImportOptions are Import's.
type ImportOptions struct {
	// As imports the tenant under this slug instead of the file's.
	As string
	// Name gives the tenant this name instead of the file's.
	Name string
	// Limits bound what is read into memory (zero: DefaultLimits).
	Limits Limits
}

// ImportResult says what Import wrote.
type ImportResult struct {
	// Manifest is the file's.
	Manifest Manifest
	// Account is the tenant as written, with the id the target gave it.
	Account models.Account
	// Checksum is the tenant's seed checksum as read back from the
	// target: the file's, unless As or Name changed the account.
	Checksum string
	// Rows is how many rows were written, the account's included.
	Rows int
}

// Import reads a tenant file from r and loads it into admin's deployment
// as a new tenant, in one transaction, with ids the target gives
// (Admin.AssignIDs), then reads it back and compares its seed checksum
// with the file's. A slug the deployment's directory does not list is
// created by the load (Admin.LoadTenant: multidb's database, multischema's
// schema and role), all of it or nothing. It refuses, writing nothing, a
// file Read refuses (ErrInvalid), a slug no tenant may have
// (strategy.ValidateSlug) and a slug the deployment already has
// (ErrExists).
func Import(ctx context.Context, admin strategy.Admin, r io.Reader, o ImportOptions) (ImportResult, error) {
	ex, err := exporter(admin)
	if err != nil {
		return ImportResult{}, err
	}
	if o.Limits == (Limits{}) {
		o.Limits = DefaultLimits()
	}
	if o.As != "" {
		if err := strategy.ValidateSlug(o.As); err != nil {
			return ImportResult{}, fmt.Errorf("import: %w; nothing was written", err)
		}
	}
	m, d, err := Read(r, o.Limits)
	if err != nil {
		return ImportResult{}, err
	}
	res := ImportResult{Manifest: m, Rows: d.Rows()}
	if o.As != "" {
		d.Account.Slug = o.As
	}
	if o.Name != "" {
		d.Account.Name = o.Name
	}
	slug := d.Account.Slug
	if err := strategy.ValidateSlug(slug); err != nil {
		return res, fmt.Errorf("import: %w; nothing was written (import it under another slug with --as)", err)
	}
	want := Checksum(d)

	if err := free(ctx, admin, slug); err != nil {
		return res, fmt.Errorf("import tenant %s: %w; nothing was written", slug, err)
	}
	if err := admin.AssignIDs(ctx, d); err != nil {
		return res, fmt.Errorf("import tenant %s: %w; nothing was written", slug, err)
	}
	if err := admin.LoadTenant(ctx, d, true); err != nil {
		return res, fmt.Errorf("import tenant %s: %w; nothing was written", slug, err)
	}
	// LoadTenant commits asynchronously, for seeding; one tenant imported
	// is worth the wait for the disk.
	if err := admin.Flush(ctx); err != nil {
		return res, fmt.Errorf("import tenant %s: written, but not yet known to be on disk: %w", slug, err)
	}
	acct, _, back, err := snapshot(ctx, ex, slug)
	if err != nil {
		return res, fmt.Errorf("import tenant %s: written, but reading it back failed: %w", slug, err)
	}
	res.Account, res.Checksum = acct, Checksum(back)
	if res.Checksum != want {
		return res, fmt.Errorf("import tenant %s: written, but it reads back with checksum %s, not %s: compare it with the file before using it", slug, res.Checksum, want)
	}
	return res, nil
}

// free returns nil when the deployment has no tenant slug: none in its
// directory, or (multidb) one that setup listed with a database still
// waiting for its account.
func free(ctx context.Context, admin strategy.Admin, slug string) error {
	_, err := admin.LookUpTenant(ctx, slug)
	switch {
	case errors.Is(err, strategy.ErrTenantNotFound):
		return nil
	case err != nil:
		return err
	}
	existing, err := admin.ExistingSlugs(ctx, []string{slug})
	if err != nil {
		return err
	}
	if len(existing) > 0 {
		return fmt.Errorf("%w in this %s deployment (import it under another slug with --as, or delete the tenant first)", ErrExists, admin.Name())
	}
	return nil
}
