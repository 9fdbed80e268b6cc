package seed

import (
	"math/rand"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/brianvoe/gofakeit/v6/data"
)

// vocabulary is gofakeit's word lists, flattened once. gofakeit's own
// Sentence, Verb, Noun and Adjective look words up in nested maps (and
// Adjective builds a map) on every call, which made them most of the cost of
// generating a million rows; drawing from flat slices gives the same kind of
// text several times faster.
type vocabulary struct {
	words, verbs, nouns, adjectives []string
	hackerVerbs, hackerNouns        []string
}

// words is built on first use and never changed after.
var words = sync.OnceValue(func() *vocabulary {
	v := &vocabulary{
		hackerVerbs: data.Hacker["verb"],
		hackerNouns: data.Hacker["noun"],
	}
	// Sorted keys: map order would make the lists, and so the data, differ
	// between runs.
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range data.Word {
			if !yield(k) {
				return
			}
		}
	})
	for _, k := range keys {
		// Entries such as "bus stop" are split, as gofakeit's Word does.
		var list []string
		for _, w := range data.Word[k] {
			list = append(list, strings.Fields(w)...)
		}
		v.words = append(v.words, list...)
		switch {
		case strings.HasPrefix(k, "verb_"):
			v.verbs = append(v.verbs, list...)
		case strings.HasPrefix(k, "noun_"):
			v.nouns = append(v.nouns, list...)
		case strings.HasPrefix(k, "adjective_"):
			v.adjectives = append(v.adjectives, list...)
		}
	}
	return v
})

func pick(r *rand.Rand, list []string) string { return list[r.Intn(len(list))] }

// sentence is n random words, the first capitalised, ending in a full stop.
func (v *vocabulary) sentence(r *rand.Rand, n int) string {
	var b strings.Builder
	b.Grow(n * 8)
	for i := range n {
		w := pick(r, v.words)
		if i == 0 {
			first, size := utf8.DecodeRuneInString(w)
			b.WriteRune(unicode.ToTitle(first))
			w = w[size:]
		} else {
			b.WriteByte(' ')
		}
		b.WriteString(w)
	}
	b.WriteByte('.')
	return b.String()
}
