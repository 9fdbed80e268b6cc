package configs

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// helpEntries parses Help's output into each variable's text, unwrapped.
func helpEntries(t *testing.T, help string) map[string]string {
	t.Helper()
	entries := map[string]string{}
	name := ""
	for _, line := range strings.Split(strings.TrimSuffix(help, "\n"), "\n")[1:] {
		switch {
		case strings.HasPrefix(line, "   "):
			if name == "" {
				t.Fatalf("Help() continues before any variable: %q", line)
			}
			entries[name] += " " + strings.TrimSpace(line)
		case strings.HasPrefix(line, "  "):
			fields := strings.Fields(line)
			name = fields[0]
			entries[name] = strings.Join(fields[1:], " ")
		default:
			t.Fatalf("Help() line %q is neither a variable nor a continuation", line)
		}
	}
	return entries
}

func TestHelpDescribesEveryVariable(t *testing.T) {
	help := Help()
	entries := helpEntries(t, help)
	vs := Variables()
	for _, v := range vs {
		want := v.Summary
		if v.Value != "" || v.Default != "" {
			want += "; default " + plainText(v.DefaultText())
		}
		if got := entries[v.Name]; got != want {
			t.Errorf("Help() gives %s as %q, want %q", v.Name, got, want)
		}
	}
	if len(entries) != len(vs) {
		t.Errorf("Help() has %d entries, want one for each of %d variables:\n%s", len(entries), len(vs), help)
	}
	for _, line := range strings.Split(help, "\n") {
		if n := utf8.RuneCountInString(line); n > helpWidth {
			t.Errorf("Help() line %q is %d characters, want at most %d", line, n, helpWidth)
		}
	}
}

// TestHelpStatesComputedDefaults pins the defaults help once got wrong:
// PGSSLMODE (it said prefer) and MULTIDB_OPEN_CONNS (it said 64).
func TestHelpStatesComputedDefaults(t *testing.T) {
	entries := helpEntries(t, Help())
	for _, tc := range []struct{ name, want string }{
		{"PGSSLMODE", "; default disable on loopback and Unix sockets, else prefer"},
		{"MULTIDB_OPEN_CONNS", "; default DB_MAX_CONNS per tenant, at most 3/4 of the server's max_connections"},
	} {
		if got := entries[tc.name]; !strings.Contains(got, tc.want) {
			t.Errorf("Help() gives %s as %q, want it to say %q", tc.name, got, tc.want)
		}
	}
}

func TestWrap(t *testing.T) {
	for _, tc := range []struct {
		text  string
		width int
		want  []string
	}{
		{"", 10, []string{""}},
		{"one two three", 20, []string{"one two three"}},
		{"one two three", 7, []string{"one two", "three"}},
		{"one  two\nthree", 7, []string{"one two", "three"}},
		{"a verylongword b", 5, []string{"a", "verylongword", "b"}},
	} {
		if got := wrap(tc.text, tc.width); !slices.Equal(got, tc.want) {
			t.Errorf("wrap(%q, %d) = %q, want %q", tc.text, tc.width, got, tc.want)
		}
	}
}
