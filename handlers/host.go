package handlers

import (
	"net"
	"strings"
	"unicode/utf8"
)

// hostKind is what a request's Host header addresses.
type hostKind int

const (
	hostInvalid hostKind = iota // not this site
	hostBase                    // the bare base domain: the all-tenants view
	hostTenant                  // <slug>.<base domain>
)

// maxHostLength is DNS's limit on a name.
const maxHostLength = 253

// parseHost splits a Host header into what it addresses and, for a tenant,
// its slug. It only looks at the shape: whether the slug exists is the
// strategy's business. Host names are case-insensitive, so they are
// compared in lower case, and a trailing dot (an absolute name) is allowed.
func parseHost(host, baseDomain string) (hostKind, string) {
	if len(host) == 0 || len(host) > maxHostLength+6 { // room for ":65535"
		return hostInvalid, ""
	}
	// Host names on the wire are ASCII (IDNs travel as punycode). Anything
	// else is refused before lower-casing, which maps some non-ASCII
	// letters to ASCII ones: the Kelvin sign U+212A becomes "k".
	for i := 0; i < len(host); i++ {
		if host[i] >= utf8.RuneSelf {
			return hostInvalid, ""
		}
	}
	// Brackets enclose IPv6 literals, which name no site here;
	// net.SplitHostPort would strip them from "[tenant-1.localhost]:80".
	if strings.ContainsAny(host, "[]") {
		return hostInvalid, ""
	}
	if h, port, err := net.SplitHostPort(host); err == nil {
		if port == "" || strings.Trim(port, "0123456789") != "" {
			return hostInvalid, ""
		}
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == baseDomain {
		return hostBase, ""
	}
	label, ok := strings.CutSuffix(host, "."+baseDomain)
	if !ok || label == "" || strings.Contains(label, ".") || len(label) > 63 {
		return hostInvalid, ""
	}
	for _, r := range label {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return hostInvalid, ""
		}
	}
	return hostTenant, label
}
