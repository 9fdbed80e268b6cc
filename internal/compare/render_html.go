package compare

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io"
)

//go:embed templates/report.html.tmpl
var reportTemplates embed.FS

// The template is parsed per call: it is small, and a package-level
// template would be the package's only mutable state.
func parseReportTemplate() (*template.Template, error) {
	return template.New("report.html.tmpl").Funcs(template.FuncMap{
		"n": svgCoord,
	}).ParseFS(reportTemplates, "templates/report.html.tmpl")
}

// htmlReport is the page's data: the shared view plus the charts, which
// only HTML can show, and why any chart is missing.
type htmlReport struct {
	reportView
	Charts     []svgChart
	ChartNotes []string
	// SweepFigures are the "Many tenants" figures with their charts.
	SweepFigures []htmlSweepFigure
}

type htmlSweepFigure struct {
	sweepFigure
	Charts []svgChart
}

// WriteHTML writes r as one self-contained HTML page (inline style and
// SVG charts, nothing fetched from the network), with the same figures as
// WriteMarkdown.
func WriteHTML(w io.Writer, r Report) error {
	tmpl, err := parseReportTemplate()
	if err != nil {
		return fmt.Errorf("parse report template: %w", err)
	}
	data := htmlReport{reportView: newReportView(r)}
	data.Charts, data.ChartNotes = charts(r)
	if data.Sweep != nil {
		for _, f := range data.Sweep.Figures {
			data.SweepFigures = append(data.SweepFigures, htmlSweepFigure{f, sweepCharts(r, f)})
		}
	}
	// Rendered in memory first so that a template error leaves w
	// untouched rather than holding half a page.
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, data); err != nil {
		return fmt.Errorf("render HTML report: %w", err)
	}
	if _, err := buf.WriteTo(w); err != nil {
		return fmt.Errorf("write HTML report: %w", err)
	}
	return nil
}
