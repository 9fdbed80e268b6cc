package handlers

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseHost(t *testing.T) {
	tests := []struct {
		host     string
		wantKind hostKind
		wantSlug string
	}{
		{"localhost", hostBase, ""},
		{"localhost:8080", hostBase, ""},
		{"LOCALHOST:8080", hostBase, ""},
		{"localhost.", hostBase, ""},
		{"tenant-3.localhost:8080", hostTenant, "tenant-3"},
		{"tenant-3.localhost", hostTenant, "tenant-3"},
		{"TENANT-1.localhost", hostTenant, "tenant-1"},
		{"tenant-01.localhost", hostTenant, "tenant-01"}, // shape only; the strategy rejects it
		{"tenant-1.localhost.evil.com", hostInvalid, ""},
		{"evil.com", hostInvalid, ""},
		{"a.tenant-1.localhost", hostInvalid, ""},
		{".localhost", hostInvalid, ""},
		{"tenant-1'; drop table x;--.localhost", hostInvalid, ""},
		{"tenаnt-1.localhost", hostInvalid, ""}, // Cyrillic а
		{"tenant_1.localhost", hostInvalid, ""},
		{"", hostInvalid, ""},
		{"localhost:", hostInvalid, ""},
		{"localhost:abc", hostInvalid, ""},
		{"[::1]:8080", hostInvalid, ""},
		{"[tenant-1.localhost]:8080", hostInvalid, ""},
		{"[localhost]:8080", hostInvalid, ""},
		{"127.0.0.1:8080", hostInvalid, ""},
		{strings.Repeat("a", 64) + ".localhost", hostInvalid, ""},
		{strings.Repeat("a.", 200) + "localhost", hostInvalid, ""},
		{"tenant-1.localhost\x00", hostInvalid, ""},
		// Shape only: these reach the strategy, which knows no such tenant.
		{"tenant--1.localhost", hostTenant, "tenant--1"},
		{"xn--tnant-1-5nf.localhost", hostTenant, "xn--tnant-1-5nf"}, // punycode of a lookalike
		// Unicode lookalikes never get through.
		{"t\u0435nant-1.localhost", hostInvalid, ""},                          // Cyrillic е
		{"tenant-\uff11.localhost", hostInvalid, ""},                          // fullwidth 1
		{"\uff54\uff45\uff4e\uff41\uff4e\uff54-1.localhost", hostInvalid, ""}, // fullwidth letters
		{"tenant\u20111.localhost", hostInvalid, ""},                          // non-breaking hyphen
		{"tenant-1.localhost\u3002", hostInvalid, ""},                         // ideographic full stop
		{"tenant-1.lоcalhost", hostInvalid, ""},                               // Cyrillic о in the base domain
		{"tenant-1 .localhost", hostInvalid, ""},
		{"tenant-1.localhost:8080:8080", hostInvalid, ""},
		{"tenant-1.localhost:-1", hostInvalid, ""},
		{"tenant-1.localhost:%00", hostInvalid, ""},
		{"tenant-1%2elocalhost", hostInvalid, ""},
		{"tenant-1.localhost\r\nX-Injected: 1", hostInvalid, ""},
		{strings.Repeat("a", 63) + ".localhost", hostTenant, strings.Repeat("a", 63)},
		{strings.Repeat("a", 100000), hostInvalid, ""},
	}
	for _, tt := range tests {
		kind, slug := parseHost(tt.host, "localhost")
		if kind != tt.wantKind || slug != tt.wantSlug {
			t.Errorf("parseHost(%q) = %v, %q; want %v, %q", tt.host, kind, slug, tt.wantKind, tt.wantSlug)
		}
	}
}

// TestParseHostRefusesNonASCII: lower-casing maps the Kelvin sign (U+212A)
// to "k", so a host must be refused as non-ASCII before it is lower-cased.
func TestParseHostRefusesNonASCII(t *testing.T) {
	for _, host := range []string{"boo\u212Ashop.example", "tenant-1.boo\u212Ashop.example"} {
		if kind, slug := parseHost(host, "bookshop.example"); kind != hostInvalid {
			t.Errorf("parseHost(%q, %q) = %v, %q; want hostInvalid", host, "bookshop.example", kind, slug)
		}
	}
}

func TestParsePage(t *testing.T) {
	tests := []struct {
		raw  string
		want int
		ok   bool
	}{
		{"", 1, true}, {"1", 1, true}, {"42", 42, true}, {"999999999", 999999999, true},
		{"0", 0, false}, {"-1", 0, false}, {"01", 0, false}, {"1e9", 0, false}, {"abc", 0, false},
		{"\x00", 0, false}, {"1 ", 0, false}, {"+1", 0, false}, {"1000000000", 0, false}, {"٣", 0, false},
		{"%00", 0, false}, {"1%00", 0, false}, {"1\x00", 0, false}, {"\uff11", 0, false}, {"0x1", 0, false},
		{"1.0", 0, false}, {"1,000", 0, false}, {" 1", 0, false}, {"1\n", 0, false}, {"-0", 0, false},
		{"9223372036854775808", 0, false}, {strings.Repeat("9", 10000), 0, false},
		{"1'; drop table x;--", 0, false},
	}
	for _, tt := range tests {
		got, ok := parsePage(tt.raw)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parsePage(%q) = %d, %v; want %d, %v", tt.raw, got, ok, tt.want, tt.ok)
		}
	}
}

func TestPageWindow(t *testing.T) {
	nums := func(links []pageLink) []int {
		var out []int
		for _, l := range links {
			out = append(out, l.Number)
		}
		return out
	}
	tests := []struct {
		current, pages int
		want           []int // 0 is a gap
	}{
		{1, 1, []int{1}},
		{1, 3, []int{1, 2, 3}},
		{1, 10, []int{1, 2, 3, 0, 10}},
		{5, 10, []int{1, 0, 3, 4, 5, 6, 7, 0, 10}},
		{10, 10, []int{1, 0, 8, 9, 10}},
		{4, 10, []int{1, 2, 3, 4, 5, 6, 0, 10}},
	}
	for _, tt := range tests {
		links := pageWindow(tt.current, tt.pages)
		if got := nums(links); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("pageWindow(%d, %d) = %v, want %v", tt.current, tt.pages, got, tt.want)
		}
		for _, l := range links {
			if l.Current != (l.Number == tt.current) {
				t.Errorf("pageWindow(%d, %d): link %d current = %v", tt.current, tt.pages, l.Number, l.Current)
			}
		}
	}
}
