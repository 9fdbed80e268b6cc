package configs

import (
	"fmt"
	"strings"
)

// helpWidth is the width Help wraps to: a terminal's 80 columns.
const helpWidth = 80

// Help is the environment section that `tenancy --help` and every
// command's --help end with: one entry per variable, its summary and
// default wrapped beside its name.
func Help() string {
	vs := Variables()
	name := 0
	for _, v := range vs {
		name = max(name, len(v.Name))
	}
	indent := strings.Repeat(" ", 2+name+2)
	var b strings.Builder
	b.WriteString("Environment (more in docs/configuration.md):\n")
	for _, v := range vs {
		text := v.Summary
		if v.Default != "" || v.Value != "" {
			text += "; default " + plainText(v.DefaultText())
		}
		for i, line := range wrap(text, helpWidth-len(indent)) {
			if i == 0 {
				fmt.Fprintf(&b, "  %-*s  %s\n", name, v.Name, line)
			} else {
				fmt.Fprintf(&b, "%s%s\n", indent, line)
			}
		}
	}
	return b.String()
}

// plainText drops Markdown's code quotes for a terminal.
func plainText(markdown string) string {
	return strings.ReplaceAll(markdown, "`", "")
}

// wrap breaks text into lines of at most width bytes at spaces; a word
// longer than width gets a line of its own.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		switch {
		case line == "":
			line = word
		case len(line)+1+len(word) <= width:
			line += " " + word
		default:
			lines = append(lines, line)
			line = word
		}
	}
	return append(lines, line)
}
