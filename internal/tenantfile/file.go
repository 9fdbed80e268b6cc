// Package tenantfile is the file one tenant is exported to and imported
// from, whatever the strategy on either side: a tar archive (gzip
// compressed or not) holding manifest.json and one file per table in
// PostgreSQL's COPY text format. Export and Import move a tenant through
// it with the strategies' own export (strategy.TenantExporter) and bulk
// load (strategy.Admin.AssignIDs, LoadTenant), so ids are given anew by
// the target, as its strategy requires.
//
// The manifest's checksum is the seed checksum of the tenant (seed's
// AccountDigest: every row's content in id order, parents by position,
// ids left out), so it is the same in every strategy and survives the new
// ids; each table file also carries its SHA-256. Read refuses a file that
// is anything other than what Write writes, before anything is loaded.
package tenantfile

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"tenancy/seed"
	"tenancy/strategy"
)

// Format and Version identify the file; a reader refuses other versions.
const (
	Format  = "tenancy-tenant"
	Version = 1
)

const manifestName = "manifest.json"

// ErrInvalid: the file is not a tenant file this program can import
// (damaged, cut short, tampered with, of another version). Nothing was
// written.
var ErrInvalid = errors.New("not a valid tenant file")

// Manifest describes a tenant file.
type Manifest struct {
	Format     string    `json:"format"`
	Version    int       `json:"version"`
	Strategy   string    `json:"strategy"` // the strategy it was exported from
	Slug       string    `json:"slug"`
	Name       string    `json:"name"`
	ExportedAt time.Time `json:"exported_at"`
	Tables     []Table   `json:"tables"`
	// Checksum is the tenant's seed checksum (Checksum).
	Checksum string `json:"checksum"`
}

// Table is one table file of a tenant file.
type Table struct {
	Name    string   `json:"name"`
	File    string   `json:"file"`
	Columns []string `json:"columns"`
	Rows    int      `json:"rows"`
	Bytes   int64    `json:"bytes"`
	SHA256  string   `json:"sha256"`
}

// Rows is how many rows the file holds, the account's included.
func (m Manifest) Rows() int {
	n := 0
	for _, t := range m.Tables {
		n += t.Rows
	}
	return n
}

// Counts lists each table's rows, "accounts 1, users 3, ...".
func (m Manifest) Counts() string {
	parts := make([]string, len(m.Tables))
	for i, t := range m.Tables {
		parts[i] = fmt.Sprintf("%s %d", t.Name, t.Rows)
	}
	return strings.Join(parts, ", ")
}

// Checksum is d's seed checksum: seed.Checksum of its one AccountDigest,
// what `tenancy seed` would print for this account alone. It covers the
// slug and name too.
func Checksum(d *strategy.TenantData) string {
	return seed.Checksum([]seed.Digest{seed.AccountDigest(d)})
}

func tableFile(name string) string { return name + ".copy" }

// NewManifest describes tables (COPY text in strategy.DataTables order)
// and d, the data Decode made of them.
func NewManifest(strategyName string, exportedAt time.Time, d *strategy.TenantData, tables [][]byte) Manifest {
	m := Manifest{Format: Format, Version: Version, Strategy: strategyName, Slug: d.Account.Slug, Name: d.Account.Name,
		ExportedAt: exportedAt.UTC(), Checksum: Checksum(d)}
	counts := []int{1, len(d.Users), len(d.Projects), len(d.Tasks), len(d.Subtasks)}
	for i, name := range strategy.DataTables() {
		sum := sha256.Sum256(tables[i])
		m.Tables = append(m.Tables, Table{Name: name, File: tableFile(name), Columns: strategy.ExportColumns()[i],
			Rows: counts[i], Bytes: int64(len(tables[i])), SHA256: hex.EncodeToString(sum[:])})
	}
	return m
}

// Write writes the manifest and the tables as a tar archive to w,
// gzip-compressed when compress is set.
func Write(w io.Writer, m Manifest, tables [][]byte, compress bool) error {
	var zw *gzip.Writer
	if compress {
		zw = gzip.NewWriter(w)
		w = zw
	}
	tw := tar.NewWriter(w)
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	manifest = append(manifest, '\n')
	add := func(name string, data []byte) error {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: m.ExportedAt, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := add(manifestName, manifest); err != nil {
		return fmt.Errorf("write %s: %w", manifestName, err)
	}
	for i, t := range m.Tables {
		if err := add(t.File, tables[i]); err != nil {
			return fmt.Errorf("write %s: %w", t.File, err)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if zw != nil {
		return zw.Close()
	}
	return nil
}

// Limits bound what Read takes into memory.
type Limits struct {
	// Manifest and Table bound the size of manifest.json and of each
	// table file.
	Manifest, Table int64
}

// DefaultLimits: a manifest is a few kB; 1 GiB of COPY text is a tenant
// of some millions of rows, as much as this program's loader holds in
// memory at once.
func DefaultLimits() Limits { return Limits{Manifest: 1 << 20, Table: 1 << 30} }

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Read reads a tenant file (gzip-compressed or not) and returns its
// manifest and data, the data's parents given by index and no ids. It
// checks everything before it returns: the entries (only manifest.json
// and the five table files, each once, regular files, within lim), the
// version, the columns, each table's size, SHA-256 and row count, every
// row, and the seed checksum of the whole. Any failure is ErrInvalid.
func Read(r io.Reader, lim Limits) (Manifest, *strategy.TenantData, error) {
	br := bufio.NewReader(r)
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return Manifest{}, nil, invalid("gzip: %v", err)
		}
		defer zr.Close()
		r = zr
	} else {
		r = br
	}
	names := strategy.DataTables()
	want := map[string]int64{manifestName: lim.Manifest}
	for _, n := range names {
		want[tableFile(n)] = lim.Table
	}
	entries := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Manifest{}, nil, invalid("tar: %v", err)
		}
		limit, known := want[hdr.Name]
		switch {
		case !known:
			return Manifest{}, nil, invalid("unexpected entry %q: a tenant file holds %s and the table files %s only", hdr.Name, manifestName, strings.Join(tableFiles(), ", "))
		case hdr.Typeflag != tar.TypeReg:
			return Manifest{}, nil, invalid("entry %q is not a regular file (type %q)", hdr.Name, hdr.Typeflag)
		case entries[hdr.Name] != nil:
			return Manifest{}, nil, invalid("entry %q appears twice", hdr.Name)
		case hdr.Size < 0 || hdr.Size > limit:
			return Manifest{}, nil, invalid("entry %q is %d bytes, more than the %d allowed", hdr.Name, hdr.Size, limit)
		}
		data := make([]byte, hdr.Size)
		if _, err := io.ReadFull(tr, data); err != nil {
			return Manifest{}, nil, invalid("entry %q: %v", hdr.Name, err)
		}
		entries[hdr.Name] = data
	}
	raw, ok := entries[manifestName]
	if !ok {
		return Manifest{}, nil, invalid("no %s", manifestName)
	}
	m, err := parseManifest(raw)
	if err != nil {
		return Manifest{}, nil, err
	}
	tables := make([][]byte, len(names))
	for i, name := range names {
		data, ok := entries[tableFile(name)]
		if !ok {
			return m, nil, invalid("table %s is missing (no %s)", name, tableFile(name))
		}
		t := m.Tables[i]
		if sum := sha256.Sum256(data); int64(len(data)) != t.Bytes || hex.EncodeToString(sum[:]) != t.SHA256 {
			return m, nil, invalid("table %s: %d bytes with SHA-256 %x, the manifest says %d bytes with %s: the file is damaged or was changed", name, len(data), sum, t.Bytes, t.SHA256)
		}
		tables[i] = data
	}
	d, err := Decode(tables)
	if err != nil {
		return m, nil, invalid("%v", err)
	}
	counts := []int{1, len(d.Users), len(d.Projects), len(d.Tasks), len(d.Subtasks)}
	for i, t := range m.Tables {
		if counts[i] != t.Rows {
			return m, nil, invalid("table %s: %d rows, the manifest says %d", t.Name, counts[i], t.Rows)
		}
	}
	if d.Account.Slug != m.Slug || d.Account.Name != m.Name {
		return m, nil, invalid("the account is %q (%q), the manifest says %q (%q)", d.Account.Slug, d.Account.Name, m.Slug, m.Name)
	}
	if sum := Checksum(d); sum != m.Checksum {
		return m, nil, invalid("checksum mismatch: the data's checksum is %s, the manifest says %s", sum, m.Checksum)
	}
	return m, d, nil
}

func tableFiles() []string {
	var out []string
	for _, n := range strategy.DataTables() {
		out = append(out, tableFile(n))
	}
	return out
}

// parseManifest reads the version first, so a file of another version is
// refused as such rather than for its fields.
func parseManifest(raw []byte) (Manifest, error) {
	var head struct {
		Format  string `json:"format"`
		Version int    `json:"version"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return Manifest{}, invalid("%s: %v", manifestName, err)
	}
	if head.Format != Format {
		return Manifest{}, invalid("%s: format %q, want %q", manifestName, head.Format, Format)
	}
	if head.Version != Version {
		return Manifest{}, invalid("format version %d; this tenancy reads version %d only (use the tenancy that exported it, or a newer one)", head.Version, Version)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, invalid("%s: %v", manifestName, err)
	}
	names, columns := strategy.DataTables(), strategy.ExportColumns()
	if len(m.Tables) != len(names) {
		return m, invalid("%s lists %d tables, want %d (%s)", manifestName, len(m.Tables), len(names), strings.Join(names, ", "))
	}
	for i, t := range m.Tables {
		if t.Name != names[i] || t.File != tableFile(names[i]) {
			return m, invalid("%s: table %d is %q in %q, want %q in %q", manifestName, i+1, t.Name, t.File, names[i], tableFile(names[i]))
		}
		if !slices.Equal(t.Columns, columns[i]) {
			return m, invalid("%s: table %s has columns (%s), want (%s)", manifestName, t.Name, strings.Join(t.Columns, ", "), strings.Join(columns[i], ", "))
		}
	}
	return m, nil
}
