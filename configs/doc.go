package configs

import (
	"bytes"
	"fmt"
	"strings"
)

// MarkdownTable is the table of variables in docs/configuration.md: name,
// default and meaning, with the range of a numeric variable.
func MarkdownTable() string {
	var b strings.Builder
	b.WriteString("| variable | default | meaning |\n| --- | --- | --- |\n")
	for _, v := range Variables() {
		meaning := v.Meaning
		if v.Min != 0 || v.Max != 0 {
			meaning += fmt.Sprintf(" A whole number from %d to %d.", v.Min, v.Max)
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.Name, cell(v.DefaultText()), cell(meaning))
	}
	return b.String()
}

// cell escapes what would end a Markdown table cell.
func cell(s string) string {
	return strings.ReplaceAll(s, "|", `\|`)
}

// The lines around the generated table in docs/configuration.md.
const (
	docTableBegin = "<!-- begin variables: written by `go generate ./configs` from configs.Variables; edit that, not this table -->"
	docTableEnd   = "<!-- end variables -->"
)

// RewriteDoc returns doc with the text between its begin and end marker
// lines replaced by MarkdownTable. It is how `go generate ./configs`
// writes docs/configuration.md, and how the tests tell that the page has
// drifted from Variables.
func RewriteDoc(doc []byte) ([]byte, error) {
	begin := bytes.Index(doc, []byte(docTableBegin))
	if begin < 0 || bytes.Count(doc, []byte(docTableBegin)) > 1 {
		return nil, fmt.Errorf("want the line %s exactly once", docTableBegin)
	}
	begin += len(docTableBegin)
	end := bytes.Index(doc[begin:], []byte(docTableEnd))
	if end < 0 || bytes.Count(doc, []byte(docTableEnd)) > 1 {
		return nil, fmt.Errorf("want the line %s exactly once, after %s", docTableEnd, docTableBegin)
	}
	end += begin
	var out bytes.Buffer
	out.Write(doc[:begin])
	// Blank lines around the table, so that Markdown does not read it as
	// part of the comments.
	out.WriteString("\n\n" + MarkdownTable() + "\n")
	out.Write(doc[end:])
	return out.Bytes(), nil
}
