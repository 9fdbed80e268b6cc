package compare

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

// WriteMarkdown writes r as report.md: what ran and where, one table of
// figures with a column per strategy, the isolation probe's verdict, and
// a reading of the numbers. The same Report always gives the same bytes.
func WriteMarkdown(w io.Writer, r Report) error {
	v := newReportView(r)
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s\n\n%s\n", mdText(v.Title), mdText(v.Summary))

	b.WriteString("\n## Machine\n\n")
	for _, m := range v.Machine {
		fmt.Fprintf(&b, "- %s: %s\n", mdText(m.Label), mdText(m.Value))
	}

	if v.Sweep != nil {
		writeMarkdownSweep(&b, v.Sweep)
	}

	fmt.Fprintf(&b, "\n## %s\n\n", mdText(v.DetailTitle))
	writeMarkdownTable(&b, v.Results)

	if v.CPU != nil {
		fmt.Fprintf(&b, "\n## %s\n", mdText(v.CPU.Title))
		for _, n := range v.CPU.Notes {
			fmt.Fprintf(&b, "\n%s\n", mdText(n))
		}
		for _, t := range v.CPU.Tables {
			b.WriteString("\n")
			writeMarkdownTable(&b, t)
		}
	}

	fmt.Fprintf(&b, "\n## Isolation probe%s\n\n", mdText(v.AtSize))
	writeMarkdownTable(&b, v.Probe)
	b.WriteString("\n")
	for _, vd := range v.Verdicts {
		fmt.Fprintf(&b, "- %s: **%s** — %s\n", mdText(vd.Strategy), vd.Word, mdText(vd.Detail))
		for _, p := range vd.Problems {
			fmt.Fprintf(&b, "  - %s\n", mdText(p))
		}
	}

	fmt.Fprintf(&b, "\n## Reading the numbers%s\n\n", mdText(v.AtSize))
	for _, s := range v.Reading {
		fmt.Fprintf(&b, "- %s\n", mdText(s))
	}
	b.WriteString("\n### Trade-offs\n\n")
	writeMarkdownTable(&b, v.TradeOffs)

	if _, err := b.WriteTo(w); err != nil {
		return fmt.Errorf("write markdown report: %w", err)
	}
	return nil
}

// writeMarkdownSweep writes the "Many tenants" section: its figures as
// tables (the charts are in report.html) and their reading.
func writeMarkdownSweep(b *bytes.Buffer, v *sweepView) {
	fmt.Fprintf(b, "\n## Many tenants\n\n%s\n", mdText(v.Intro))
	if v.ChartNote != "" {
		fmt.Fprintf(b, "\n%s\n", mdText(v.ChartNote))
	} else {
		b.WriteString("\nreport.html draws each figure against the number of tenants.\n")
	}
	for _, f := range v.Figures {
		fmt.Fprintf(b, "\n### %s\n", mdText(f.Title))
		for _, n := range f.Notes {
			fmt.Fprintf(b, "\n%s\n", mdText(n))
		}
		for _, t := range f.Tables {
			b.WriteString("\n")
			writeMarkdownTable(b, t)
		}
	}
	if len(v.Reading) > 0 {
		b.WriteString("\n### Reading the sweep\n\n")
		for _, s := range v.Reading {
			fmt.Fprintf(b, "- %s\n", mdText(s))
		}
	}
}

func writeMarkdownTable(b *bytes.Buffer, t textTable) {
	writeMarkdownRow(b, t.Header)
	align := make([]string, len(t.Header))
	for i := range align {
		align[i] = "---"
		if i > 0 && !t.Words {
			align[i] = "---:"
		}
	}
	b.WriteString("| " + strings.Join(align, " | ") + " |\n")
	for _, row := range t.Rows {
		writeMarkdownRow(b, row)
	}
}

func writeMarkdownRow(b *bytes.Buffer, cells []string) {
	escaped := make([]string, len(cells))
	for i, c := range cells {
		escaped[i] = mdText(c)
	}
	b.WriteString("| " + strings.Join(escaped, " | ") + " |\n")
}

var mdEscaper = strings.NewReplacer(
	`\`, `\\`, "`", "\\`", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`,
	"<", `\<`, ">", `\>`, "|", `\|`, "#", `\#`, "\r\n", " ", "\n", " ", "\r", " ",
)

// mdText escapes what Markdown would otherwise read as markup (or, in a
// table, as a cell boundary), and folds line breaks, so that text from the
// run such as a problem description or a CPU name shows as written.
func mdText(s string) string {
	return mdEscaper.Replace(s)
}
