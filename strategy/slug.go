package strategy

import (
	"regexp"
	"strconv"
)

var slugPattern = regexp.MustCompile(`^tenant-(0|[1-9][0-9]{0,8})$`)

// Slug is the slug of the i-th sample tenant.
func Slug(i int) string { return "tenant-" + strconv.Itoa(i) }

// ParseSlug returns i for a canonical slug "tenant-i": no sign, no leading
// zeros, so each tenant has exactly one spelling.
func ParseSlug(slug string) (int, bool) {
	m := slugPattern.FindStringSubmatch(slug)
	if m == nil {
		return 0, false
	}
	i, err := strconv.Atoi(m[1])
	return i, err == nil
}
