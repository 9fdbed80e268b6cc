package strategy

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
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

// labelPattern is one DNS label in lower case: the slug is the first label
// of the tenant's host name.
var labelPattern = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$`)

// MaxSlugLength leaves room for multidb's "<PGDATABASE>_" in a 63-byte
// database name.
const MaxSlugLength = 40

// reservedSlugs name things that are not tenants: multidb's template
// database is "<PGDATABASE>_tenant-template".
var reservedSlugs = map[string]bool{"tenant-template": true, "www": true}

// ValidateSlug checks a slug for a new tenant: a lower-case DNS label of
// at most MaxSlugLength characters (letters, digits, hyphens; a letter
// first), no "--", not reserved, and a "tenant-<n>" slug only in its
// canonical spelling (tenant-1, not tenant-01), so that no two spellings
// name one tenant.
func ValidateSlug(slug string) error {
	switch {
	case !labelPattern.MatchString(slug):
		return fmt.Errorf("slug %q: want 1 to %d lower-case letters, digits and hyphens, starting with a letter and not ending with a hyphen", slug, MaxSlugLength)
	case strings.Contains(slug, "--"):
		return fmt.Errorf("slug %q: no two hyphens in a row", slug)
	case reservedSlugs[slug]:
		return fmt.Errorf("slug %q is reserved", slug)
	}
	if rest, ok := strings.CutPrefix(slug, "tenant-"); ok && strings.Trim(rest, "0123456789") == "" {
		if _, ok := ParseSlug(slug); !ok {
			return fmt.Errorf("slug %q: a numbered tenant is spelled tenant-<n> without leading zeros", slug)
		}
	}
	return nil
}
