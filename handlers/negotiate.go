package handlers

import (
	"strconv"
	"strings"
)

// prefersJSON reads an Accept header the way RFC 9110 describes: the most
// specific media range that matches a type gives its quality, and JSON is
// served only when it is acceptable (q > 0) and preferred over HTML. With
// no Accept header, "*/*", or a tie, the answer is HTML.
func prefersJSON(accept string) bool {
	if strings.TrimSpace(accept) == "" {
		return false
	}
	jsonQ, htmlQ := quality(accept, "application", "json"), quality(accept, "text", "html")
	return jsonQ > 0 && jsonQ > htmlQ
}

// quality is the q of the most specific range in accept matching
// typ/subtype (0 when none matches).
func quality(accept, typ, subtype string) float64 {
	best, bestSpecificity := 0.0, -1
	for _, part := range strings.Split(accept, ",") {
		fields := strings.Split(part, ";")
		mediaRange := strings.ToLower(strings.TrimSpace(fields[0]))
		t, s, ok := strings.Cut(mediaRange, "/")
		if !ok {
			continue
		}
		specificity := -1
		switch {
		case t == typ && s == subtype:
			specificity = 2
		case t == typ && s == "*":
			specificity = 1
		case t == "*" && s == "*":
			specificity = 0
		}
		if specificity < bestSpecificity || specificity < 0 {
			continue
		}
		q := 1.0
		for _, param := range fields[1:] {
			k, v, _ := strings.Cut(strings.TrimSpace(param), "=")
			if strings.EqualFold(strings.TrimSpace(k), "q") {
				parsed, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil || parsed < 0 || parsed > 1 {
					parsed = 0
				}
				q = parsed
			}
		}
		if specificity > bestSpecificity || q > best {
			best, bestSpecificity = q, specificity
		}
	}
	return best
}
