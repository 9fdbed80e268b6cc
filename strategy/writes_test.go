package strategy

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckNewSubtask(t *testing.T) {
	for _, tc := range []struct {
		in     NewSubtask
		fields []string
	}{
		{NewSubtask{TaskID: 1, Name: "ok", Details: "line\nline\ttab"}, nil},
		{NewSubtask{TaskID: 1, Name: strings.Repeat("é", MaxSubtaskName)}, nil},
		{NewSubtask{TaskID: 1, Name: strings.Repeat("é", MaxSubtaskName+1)}, []string{"name"}},
		{NewSubtask{TaskID: 1, Name: "a\rb"}, []string{"name"}},
		{NewSubtask{TaskID: 1, Name: "ok", Details: "\x00"}, []string{"details"}},
		{NewSubtask{TaskID: 1, Name: "ok", Details: "\xc3"}, []string{"details"}},
		{NewSubtask{}, []string{"name", "task_id"}},
	} {
		err := CheckNewSubtask(tc.in)
		var ve *ValidationError
		switch {
		case tc.fields == nil && err != nil:
			t.Errorf("CheckNewSubtask(%.40q) = %v, want nil", tc.in.Name, err)
		case tc.fields != nil && (!errors.As(err, &ve) || !errors.Is(err, ErrInvalid) || len(ve.Fields) != len(tc.fields)):
			t.Errorf("CheckNewSubtask(%.40q) = %v, want invalid %v", tc.in.Name, err, tc.fields)
		case tc.fields != nil:
			for _, f := range tc.fields {
				if ve.Fields[f] == "" || !strings.Contains(err.Error(), f+": ") {
					t.Errorf("CheckNewSubtask(%.40q) = %v, want a message for %s", tc.in.Name, err, f)
				}
			}
		}
	}
}
