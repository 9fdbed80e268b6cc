package tenantfile

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"tenancy/models"
	"tenancy/strategy"
)

// timeLayout is how PostgreSQL writes a timestamptz in COPY text with
// DateStyle ISO and TimeZone UTC ("2023-08-18 09:00:00+00", with up to
// six fractional digits when there are any).
const timeLayout = "2006-01-02 15:04:05.999999999-07"

// Decode parses the COPY text of each table of strategy.DataTables (in
// that order, with the columns strategy.ExportColumns names) into a
// tenant's data: parents given by index, ids left out, as an importer
// needs them. It refuses anything it cannot read back exactly: a row with
// the wrong number of fields, a NULL, a value that is not of its column's
// type, an id twice, a parent id that no row of the parent table has, an
// accounts table without exactly one row.
func Decode(tables [][]byte) (*strategy.TenantData, error) {
	names := strategy.DataTables()
	if len(tables) != len(names) {
		return nil, fmt.Errorf("%d tables, want %d (%s)", len(tables), len(names), strings.Join(names, ", "))
	}
	rows := make([][][]string, len(names))
	for i, cols := range strategy.ExportColumns() {
		var err error
		if rows[i], err = splitRows(tables[i], len(cols)); err != nil {
			return nil, fmt.Errorf("%s: %w", names[i], err)
		}
	}
	var d strategy.TenantData
	if len(rows[0]) != 1 {
		return nil, fmt.Errorf("accounts: %d rows, want exactly 1", len(rows[0]))
	}
	var err error
	p := parser{}
	d.Account = models.Account{Slug: rows[0][0][1], Name: rows[0][0][2]}
	if _, err = p.int(rows[0][0][0]); err != nil {
		return nil, fmt.Errorf("accounts row 1: id: %w", err)
	}

	ids := make([]map[int64]int, len(names))
	for t := 1; t < len(names); t++ {
		ids[t] = make(map[int64]int, len(rows[t]))
		for r, row := range rows[t] {
			id, err := p.int(row[0])
			if err != nil {
				return nil, fmt.Errorf("%s row %d: id: %w", names[t], r+1, err)
			}
			if _, dup := ids[t][id]; dup {
				return nil, fmt.Errorf("%s row %d: id %d appears twice", names[t], r+1, id)
			}
			ids[t][id] = r
		}
	}
	parent := func(t, r int, table string, field string) (int, error) {
		id, err := p.int(field)
		if err != nil {
			return 0, fmt.Errorf("%s row %d: %w", names[t], r+1, err)
		}
		i, ok := ids[slices.Index(names, table)][id]
		if !ok {
			return 0, fmt.Errorf("%s row %d: refers to %s id %d, which the file does not hold", names[t], r+1, table, id)
		}
		return i, nil
	}

	d.Users = make([]models.User, len(rows[1]))
	for r, f := range rows[1] {
		u := &d.Users[r]
		u.Email, u.FirstName, u.LastName, u.Password = f[1], f[2], f[3], f[4]
		if u.IsActive, err = p.bool(f[5]); err == nil {
			u.DateJoined, err = p.time(f[6])
		}
		if err != nil {
			return nil, fmt.Errorf("users row %d: %w", r+1, err)
		}
	}
	d.Projects = make([]models.Project, len(rows[2]))
	for r, f := range rows[2] {
		d.Projects[r].Name, d.Projects[r].Details = f[1], f[2]
	}
	d.Tasks = make([]strategy.TaskData, len(rows[3]))
	for r, f := range rows[3] {
		t := &d.Tasks[r]
		if t.Project, err = parent(3, r, "projects", f[1]); err != nil {
			return nil, err
		}
		t.Name, t.Details = f[2], f[4]
		if t.IsComplete, err = p.bool(f[3]); err != nil {
			return nil, fmt.Errorf("tasks row %d: %w", r+1, err)
		}
	}
	d.Subtasks = make([]strategy.SubtaskData, len(rows[4]))
	for r, f := range rows[4] {
		s := &d.Subtasks[r]
		if s.Task, err = parent(4, r, "tasks", f[1]); err != nil {
			return nil, err
		}
		s.Name, s.Details = f[2], f[4]
		if s.IsComplete, err = p.bool(f[3]); err != nil {
			return nil, fmt.Errorf("subtasks row %d: %w", r+1, err)
		}
	}
	return &d, nil
}

type parser struct{}

func (parser) int(s string) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a whole number", s)
	}
	return v, nil
}

func (parser) bool(s string) (bool, error) {
	switch s {
	case "t":
		return true, nil
	case "f":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (t or f)", s)
}

func (parser) time(s string) (time.Time, error) {
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a timestamp as PostgreSQL writes one in UTC", s)
	}
	return t.UTC(), nil
}

// splitRows splits COPY text into rows of columns unescaped fields. Every
// row ends in a newline, as PostgreSQL writes them.
func splitRows(data []byte, columns int) ([][]string, error) {
	if len(data) == 0 {
		return nil, nil
	}
	if data[len(data)-1] != '\n' {
		return nil, fmt.Errorf("the last row has no newline: the table is cut short")
	}
	lines := bytes.Split(data[:len(data)-1], []byte{'\n'})
	out := make([][]string, len(lines))
	for r, line := range lines {
		fields := bytes.Split(line, []byte{'\t'})
		if len(fields) != columns {
			return nil, fmt.Errorf("row %d: %d fields, want %d", r+1, len(fields), columns)
		}
		row := make([]string, columns)
		for c, f := range fields {
			if string(f) == `\N` {
				return nil, fmt.Errorf("row %d, field %d: NULL, which no exported column may be", r+1, c+1)
			}
			v, err := unescape(f)
			if err != nil {
				return nil, fmt.Errorf("row %d, field %d: %w", r+1, c+1, err)
			}
			row[c] = v
		}
		out[r] = row
	}
	return out, nil
}

// unescape undoes COPY text's backslash escapes: \b \f \n \r \t \v, \\,
// octal \ooo and hex \xhh, and a backslash before any other character
// standing for that character.
func unescape(f []byte) (string, error) {
	if bytes.IndexByte(f, '\\') < 0 {
		return string(f), nil
	}
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i == len(f) {
			return "", fmt.Errorf("a lone backslash at the end")
		}
		switch c = f[i]; c {
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'v':
			b.WriteByte('\v')
		case 'x':
			v, n := 0, 0
			for n < 2 && i+1 < len(f) && isHex(f[i+1]) {
				i++
				v = v*16 + hexVal(f[i])
				n++
			}
			if n == 0 {
				b.WriteByte('x')
			} else {
				b.WriteByte(byte(v))
			}
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v, n := int(c-'0'), 1
			for n < 3 && i+1 < len(f) && f[i+1] >= '0' && f[i+1] <= '7' {
				i++
				v = v*8 + int(f[i]-'0')
				n++
			}
			b.WriteByte(byte(v))
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hexVal(c byte) int {
	switch {
	case c >= 'a':
		return int(c-'a') + 10
	case c >= 'A':
		return int(c-'A') + 10
	}
	return int(c - '0')
}

// encode writes d as COPY text, tables in strategy.DataTables order, the
// rows numbered from 1 in each table (for tests and for files made
// without a database; an export takes PostgreSQL's own text).
func encode(d *strategy.TenantData) [][]byte {
	out := make([][]byte, len(strategy.DataTables()))
	row := func(t int, fields ...string) {
		for i, f := range fields {
			if i > 0 {
				out[t] = append(out[t], '\t')
			}
			out[t] = append(out[t], escape(f)...)
		}
		out[t] = append(out[t], '\n')
	}
	n := func(i int) string { return strconv.Itoa(i + 1) }
	b := func(v bool) string {
		if v {
			return "t"
		}
		return "f"
	}
	row(0, "1", d.Account.Slug, d.Account.Name)
	for i, u := range d.Users {
		row(1, n(i), u.Email, u.FirstName, u.LastName, u.Password, b(u.IsActive), u.DateJoined.UTC().Format("2006-01-02 15:04:05.999999-07"))
	}
	for i, p := range d.Projects {
		row(2, n(i), p.Name, p.Details)
	}
	for i, t := range d.Tasks {
		row(3, n(i), n(t.Project), t.Name, b(t.IsComplete), t.Details)
	}
	for i, s := range d.Subtasks {
		row(4, n(i), n(s.Task), s.Name, b(s.IsComplete), s.Details)
	}
	return out
}

var escaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, "\r", `\r`, "\t", `\t`, "\b", `\b`, "\f", `\f`, "\v", `\v`)

func escape(s string) string { return escaper.Replace(s) }
