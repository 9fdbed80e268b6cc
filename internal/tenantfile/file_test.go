package tenantfile

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"tenancy/seed"
	"tenancy/strategy"
)

// sample is a generated account whose text has every character COPY text
// escapes, and one value that reads like COPY's NULL.
func sample(t testing.TB) *strategy.TenantData {
	t.Helper()
	o := seed.DefaultOptions()
	o.MaxProjects = 4
	d := seed.Generate(o, 2, "pbkdf2_sha256$1$salt$hash")
	d.Projects[0].Name = "tab\there, newline\nthere, back\\slash, \r\b\f\v, ünïcode"
	d.Projects[0].Details = `\N`
	d.Users[0].DateJoined = d.Users[0].DateJoined.Add(123456 * time.Microsecond)
	return &d
}

type entry struct {
	name     string
	typeflag byte
	data     []byte
}

// entries are the tar entries Write would write for d, after mutate has
// changed the manifest or the tables (with their SHA-256 updated after it
// unless keepHashes).
func entries(t testing.TB, d *strategy.TenantData, mutate func(m *Manifest, tables [][]byte), keepHashes bool) []entry {
	t.Helper()
	tables := encode(d)
	m := NewManifest(strategy.SingleSchema, time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), d, tables)
	if mutate != nil {
		mutate(&m, tables)
	}
	if !keepHashes {
		for i := range m.Tables {
			if i < len(tables) {
				sum := sha256.Sum256(tables[i])
				m.Tables[i].SHA256, m.Tables[i].Bytes = hex.EncodeToString(sum[:]), int64(len(tables[i]))
			}
		}
	}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	out := []entry{{manifestName, tar.TypeReg, raw}}
	for i, name := range strategy.DataTables() {
		out = append(out, entry{tableFile(name), tar.TypeReg, tables[i]})
	}
	return out
}

func tarOf(t testing.TB, es []entry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range es {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typeflag, Mode: 0o644, Size: int64(len(e.data))}
		if e.typeflag != tar.TypeReg {
			hdr.Size, hdr.Linkname = 0, "/etc/passwd"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if e.typeflag == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// What Write writes, Read reads back to the same data: the checksum is
// the seed checksum of the generated account, in either compression.
func TestWriteThenRead(t *testing.T) {
	d := sample(t)
	want := seed.Checksum([]seed.Digest{seed.AccountDigest(d)})
	for _, compress := range []bool{false, true} {
		tables := encode(d)
		back, err := Decode(tables)
		if err != nil {
			t.Fatalf("Decode(encode(sample)): %v", err)
		}
		m := NewManifest(strategy.MultiDB, time.Now(), back, tables)
		var b bytes.Buffer
		if err := Write(&b, m, tables, compress); err != nil {
			t.Fatalf("Write(gzip %v): %v", compress, err)
		}
		if gz := bytes.HasPrefix(b.Bytes(), []byte{0x1f, 0x8b}); gz != compress {
			t.Errorf("Write(gzip %v) wrote gzip: %v", compress, gz)
		}
		got, data, err := Read(&b, DefaultLimits())
		if err != nil {
			t.Fatalf("Read(Write(gzip %v)): %v", compress, err)
		}
		if got.Checksum != want || Checksum(data) != want {
			t.Errorf("gzip %v: manifest checksum %s, data's %s, want the seed checksum %s", compress, got.Checksum, Checksum(data), want)
		}
		if data.Projects[0].Name != d.Projects[0].Name || data.Projects[0].Details != `\N` || !data.Users[0].DateJoined.Equal(d.Users[0].DateJoined) {
			t.Errorf("gzip %v: project 0 %q / %q, user 0 joined %v; want %q / %q, %v", compress, data.Projects[0].Name, data.Projects[0].Details,
				data.Users[0].DateJoined, d.Projects[0].Name, `\N`, d.Users[0].DateJoined)
		}
		if got.Rows() != d.Rows() {
			t.Errorf("gzip %v: manifest counts %d rows, want %d", compress, got.Rows(), d.Rows())
		}
	}
}

// Every malformed archive is refused as ErrInvalid, with a message that
// says what is wrong.
func TestReadRefusesMalformedArchives(t *testing.T) {
	d := sample(t)
	valid := entries(t, d, nil, false)
	replace := func(name string, e entry) []entry {
		out := append([]entry(nil), valid...)
		for i := range out {
			if out[i].name == name {
				out[i] = e
			}
		}
		return out
	}
	without := func(name string) []entry {
		var out []entry
		for _, e := range valid {
			if e.name != name {
				out = append(out, e)
			}
		}
		return out
	}
	subtasks := valid[len(valid)-1].data
	changedSubtasks := bytes.Replace(subtasks, []byte("\tf\t"), []byte("\tt\t"), 1)
	tests := []struct {
		name   string
		tar    []byte
		limits Limits
		want   string
	}{
		{"wrong checksum", tarOf(t, entries(t, d, func(m *Manifest, _ [][]byte) { m.Checksum = "0123456789abcdef" }, false)), Limits{}, "checksum mismatch"},
		{"data changed, checksum kept", tarOf(t, entries(t, d, func(_ *Manifest, tables [][]byte) { tables[4] = changedSubtasks }, false)), Limits{}, "checksum mismatch"},
		{"table changed, hash kept", tarOf(t, replace("subtasks.copy", entry{"subtasks.copy", tar.TypeReg, changedSubtasks})), Limits{}, "damaged or was changed"},
		{"table cut short", tarOf(t, replace("subtasks.copy", entry{"subtasks.copy", tar.TypeReg, subtasks[:len(subtasks)/2]})), Limits{}, "damaged or was changed"},
		{"missing table", tarOf(t, without("tasks.copy")), Limits{}, "table tasks is missing"},
		{"missing manifest", tarOf(t, without(manifestName)), Limits{}, "no manifest.json"},
		{"unknown version", tarOf(t, entries(t, d, func(m *Manifest, _ [][]byte) { m.Version = 2 }, false)), Limits{}, "format version 2"},
		{"another format", tarOf(t, entries(t, d, func(m *Manifest, _ [][]byte) { m.Format = "pg_dump" }, false)), Limits{}, `format "pg_dump"`},
		{"oversize table", tarOf(t, valid), Limits{Manifest: 1 << 20, Table: 256}, "more than the 256 allowed"},
		{"oversize manifest", tarOf(t, valid), Limits{Manifest: 64, Table: 1 << 20}, "more than the 64 allowed"},
		{"parent directory", tarOf(t, append(valid, entry{"../accounts.copy", tar.TypeReg, valid[1].data})), Limits{}, `unexpected entry "../accounts.copy"`},
		{"absolute path", tarOf(t, append(valid, entry{"/etc/cron.d/x", tar.TypeReg, nil})), Limits{}, `unexpected entry "/etc/cron.d/x"`},
		{"path through a directory", tarOf(t, append(valid, entry{"x/../users.copy", tar.TypeReg, nil})), Limits{}, `unexpected entry "x/../users.copy"`},
		{"dot slash", tarOf(t, append(valid, entry{"./users.copy", tar.TypeReg, nil})), Limits{}, `unexpected entry "./users.copy"`},
		{"symlink", tarOf(t, replace("users.copy", entry{"users.copy", tar.TypeSymlink, nil})), Limits{}, "not a regular file"},
		{"hard link", tarOf(t, replace("users.copy", entry{"users.copy", tar.TypeLink, nil})), Limits{}, "not a regular file"},
		{"directory", tarOf(t, append([]entry{{"accounts.copy", tar.TypeDir, nil}}, valid...)), Limits{}, "not a regular file"},
		{"duplicate entry", tarOf(t, append(valid, valid[2])), Limits{}, "appears twice"},
		{"wrong columns", tarOf(t, entries(t, d, func(m *Manifest, _ [][]byte) { m.Tables[1].Columns = []string{"id", "email"} }, false)), Limits{}, "has columns (id, email)"},
		{"tables out of order", tarOf(t, entries(t, d, func(m *Manifest, _ [][]byte) { m.Tables[1], m.Tables[2] = m.Tables[2], m.Tables[1] }, true)), Limits{}, `table 2 is "projects"`},
		{"row count", tarOf(t, entries(t, d, func(m *Manifest, _ [][]byte) { m.Tables[2].Rows++ }, false)), Limits{}, "rows, the manifest says"},
		{"slug differs", tarOf(t, entries(t, d, func(m *Manifest, _ [][]byte) { m.Slug = "tenant-9" }, false)), Limits{}, `the manifest says "tenant-9"`},
		{"orphan subtask", tarOf(t, entries(t, d, func(_ *Manifest, tables [][]byte) {
			tables[4] = append(tables[4], []byte("99999\t99999\tx\tf\t\n")...)
		}, false)), Limits{}, "tasks id 99999, which the file does not hold"},
		{"duplicate id", tarOf(t, entries(t, d, func(_ *Manifest, tables [][]byte) { tables[2] = append(tables[2], []byte("1\tp\td\n")...) }, false)), Limits{}, "id 1 appears twice"},
		{"null", tarOf(t, entries(t, d, func(_ *Manifest, tables [][]byte) { tables[2] = append(tables[2], []byte("999\t\\N\td\n")...) }, false)), Limits{}, "NULL"},
		{"bad boolean", tarOf(t, entries(t, d, func(_ *Manifest, tables [][]byte) {
			tables[3] = bytes.Replace(tables[3], []byte("\tf\t"), []byte("\tno\t"), 1)
		}, false)), Limits{}, `"no" is not a boolean`},
		{"bad timestamp", tarOf(t, entries(t, d, func(_ *Manifest, tables [][]byte) {
			tables[1] = bytes.Replace(tables[1], []byte("+00\n"), []byte(" BC\n"), 1)
		}, false)), Limits{}, "not a timestamp"},
		{"too few fields", tarOf(t, entries(t, d, func(_ *Manifest, tables [][]byte) { tables[2] = append(tables[2], []byte("999\tp\n")...) }, false)), Limits{}, "2 fields, want 3"},
		{"two accounts", tarOf(t, entries(t, d, func(_ *Manifest, tables [][]byte) { tables[0] = append(tables[0], tables[0]...) }, false)), Limits{}, "accounts: 2 rows"},
		{"unknown manifest field", tarOf(t, replace(manifestName, entry{manifestName, tar.TypeReg,
			bytes.Replace(valid[0].data, []byte(`"format"`), []byte(`"extra":1,"format"`), 1)})), Limits{}, `unknown field "extra"`},
		{"not a tar", []byte("SELECT 1;\n"), Limits{}, "tar"},
		{"cut-short gzip", gzipped(t, tarOf(t, valid))[:200], Limits{}, "not a valid tenant file"},
		{"empty", nil, Limits{}, "no manifest.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim := tt.limits
			if lim == (Limits{}) {
				lim = DefaultLimits()
			}
			m, data, err := Read(bytes.NewReader(tt.tar), lim)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Read = %v, want ErrInvalid saying %q", err, tt.want)
			}
			if data != nil {
				t.Errorf("Read returned data (%d rows, manifest %q) with the error", data.Rows(), m.Slug)
			}
		})
	}
	// The builder itself makes valid archives, so each case above is
	// refused for its one fault.
	if _, _, err := Read(bytes.NewReader(tarOf(t, valid)), DefaultLimits()); err != nil {
		t.Fatalf("Read(valid archive) = %v", err)
	}
}

func TestUnescape(t *testing.T) {
	tests := []struct{ in, want string }{
		{`plain`, "plain"},
		{`a\tb\nc\\d`, "a\tb\nc\\d"},
		{`\b\f\r\v`, "\b\f\r\v"},
		{`\101\x42\x4`, "AB\x04"},
		{`\q\x`, "qx"},
		{`\\N`, `\N`},
	}
	for _, tt := range tests {
		got, err := unescape([]byte(tt.in))
		if err != nil || got != tt.want {
			t.Errorf("unescape(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := unescape([]byte(`ends\`)); err == nil {
		t.Errorf("unescape(%q) = nil error, want one for the lone backslash", `ends\`)
	}
}

// Whatever the bytes, Read either refuses them as ErrInvalid or returns
// data whose checksum is the manifest's; it never panics.
func FuzzRead(f *testing.F) {
	d := sample(f)
	valid := tarOf(f, entries(f, d, nil, false))
	f.Add(valid)
	f.Add(gzipped(f, valid))
	f.Add(tarOf(f, entries(f, d, func(m *Manifest, _ [][]byte) { m.Version = 3 }, false)))
	f.Add([]byte{0x1f, 0x8b, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, data, err := Read(bytes.NewReader(b), Limits{Manifest: 1 << 16, Table: 1 << 20})
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Read = %v, not ErrInvalid", err)
			}
			return
		}
		if sum := Checksum(data); sum != m.Checksum {
			t.Fatalf("Read accepted data with checksum %s under a manifest saying %s", sum, m.Checksum)
		}
	})
}
