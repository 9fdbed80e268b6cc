package handlers

import "testing"

func TestPrefersJSON(t *testing.T) {
	tests := []struct {
		accept string
		want   bool
	}{
		{"", false},
		{"*/*", false},
		{"application/json", true},
		{"Application/JSON", true},
		{"application/*", true},
		{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", false},
		{"application/json;q=0", false},
		{"application/json;q=0.1, text/html", false},
		{"application/json, text/html;q=0.5", true},
		{"text/html;q=0.2, application/json;q=0.9", true},
		{"*/*;q=0.1, application/json", true},
		{"application/json;q=abc", false},
		{"application/json;q=2", false},
		{"text/plain", false},
		{"garbage", false},
		{",,;;", false},
	}
	for _, tt := range tests {
		if got := prefersJSON(tt.accept); got != tt.want {
			t.Errorf("prefersJSON(%q) = %v, want %v", tt.accept, got, tt.want)
		}
	}
}
