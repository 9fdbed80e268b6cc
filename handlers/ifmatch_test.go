package handlers

import (
	"net/http"
	"reflect"
	"testing"
)

func TestIfMatch(t *testing.T) {
	for _, tc := range []struct {
		headers  []string
		versions []string
		any      bool
		present  bool
	}{
		{nil, nil, false, false},
		{[]string{`"abc"`}, []string{"abc"}, false, true},
		{[]string{`"a", "b"`, `"c"`}, []string{"a", "b", "c"}, false, true},
		{[]string{`*`}, nil, true, true},
		{[]string{`W/"abc"`}, nil, false, true}, // weak: never matches a write
		{[]string{`abc`}, nil, false, true},     // unquoted: not a tag
		{[]string{``}, nil, false, true},
	} {
		h := http.Header{}
		for _, v := range tc.headers {
			h.Add("If-Match", v)
		}
		versions, any, present := ifMatch(h)
		if !reflect.DeepEqual(versions, tc.versions) || any != tc.any || present != tc.present {
			t.Errorf("ifMatch(%q) = %q, %v, %v; want %q, %v, %v", tc.headers, versions, any, present, tc.versions, tc.any, tc.present)
		}
	}
}
