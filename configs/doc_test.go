package configs

import (
	"os"
	"strings"
	"testing"
)

func TestRewriteDoc(t *testing.T) {
	table := MarkdownTable()
	wrapped := "# Title\n\n" + docTableBegin + "\n\n" + table + "\n" + docTableEnd + "\n\nAfter.\n"
	for _, tc := range []struct {
		name, doc, want string
		wantErr         bool
	}{
		{"up to date", wrapped, wrapped, false},
		{"stale", "# Title\n\n" + docTableBegin + "\n| old |\n" + docTableEnd + "\n\nAfter.\n", wrapped, false},
		{"empty", "# Title\n\n" + docTableBegin + docTableEnd + "\n\nAfter.\n", wrapped, false},
		{"no markers", "# Title\n", "", true},
		{"no end", docTableBegin + "\n", "", true},
		{"end first", docTableEnd + "\n" + docTableBegin + "\n", "", true},
		{"two tables", wrapped + wrapped, "", true},
	} {
		got, err := RewriteDoc([]byte(tc.doc))
		if (err != nil) != tc.wantErr || string(got) != tc.want {
			t.Errorf("%s: RewriteDoc(%q) = %q, %v; want %q, error %v", tc.name, tc.doc, got, err, tc.want, tc.wantErr)
		}
	}
}

// TestDocTableIsUpToDate fails when docs/configuration.md's table of
// variables is not what Variables gives.
func TestDocTableIsUpToDate(t *testing.T) {
	const path = "../docs/configuration.md"
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := RewriteDoc(doc)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if string(doc) != string(want) {
		got, wantLines := strings.Split(string(doc), "\n"), strings.Split(string(want), "\n")
		i := 0
		for i < min(len(got), len(wantLines)) && got[i] == wantLines[i] {
			i++
		}
		gotLine, wantLine := "", ""
		if i < len(got) {
			gotLine = got[i]
		}
		if i < len(wantLines) {
			wantLine = wantLines[i]
		}
		t.Errorf("docs/configuration.md's table differs from configs.Variables; run `go generate ./configs` to rewrite it.\nline %d: %q\n  want: %q", i+1, gotLine, wantLine)
	}
}

func TestMarkdownTableHasEveryVariable(t *testing.T) {
	table := MarkdownTable()
	rows := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
	vs := Variables()
	if len(rows) != 2+len(vs) {
		t.Fatalf("MarkdownTable() has %d rows, want a header, a rule and %d variables:\n%s", len(rows), len(vs), table)
	}
	for i, v := range vs {
		row := rows[2+i]
		if !strings.HasPrefix(row, "| `"+v.Name+"` | "+v.DefaultText()+" | ") || strings.Count(row, "|")-strings.Count(row, `\|`) != 4 {
			t.Errorf("MarkdownTable() row %d = %q, want %s, its default and meaning in three cells", 2+i, row, v.Name)
		}
	}
}
