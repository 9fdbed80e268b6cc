package strategy

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestSortOpenSubtasks(t *testing.T) {
	tests := []struct {
		in   []TenantOpenSubtasks
		want string
	}{
		{nil, "[]"},
		{[]TenantOpenSubtasks{{Slug: "tenant-1", OpenSubtasks: 1}, {Slug: "tenant-0", OpenSubtasks: 5}}, "[tenant-0 tenant-1]"},
		// Ties by slug in byte order: "tenant-10" < "tenant-2", and
		// projects do not count.
		{[]TenantOpenSubtasks{
			{Slug: "tenant-2", OpenSubtasks: 3, ProjectsWithOpenSubtasks: 3},
			{Slug: "tenant-10", OpenSubtasks: 3, ProjectsWithOpenSubtasks: 1},
			{Slug: "tenant-0", OpenSubtasks: 0},
			{Slug: "tenant-3", OpenSubtasks: 7},
		}, "[tenant-3 tenant-10 tenant-2 tenant-0]"},
	}
	for _, tt := range tests {
		rows := append([]TenantOpenSubtasks(nil), tt.in...)
		SortOpenSubtasks(rows)
		slugs := []string{}
		for _, r := range rows {
			slugs = append(slugs, r.Slug)
		}
		if got := fmt.Sprint(slugs); got != tt.want {
			t.Errorf("SortOpenSubtasks(%v) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestOpenSubtasksReportJSON: the page's JSON has empty lists rather than
// null, says whether the report is complete, and never carries an
// unreachable tenant's error.
func TestOpenSubtasksReportJSON(t *testing.T) {
	tests := []struct {
		rep  OpenSubtasksReport
		want string
	}{
		{OpenSubtasksReport{Strategy: SingleSchema, Elapsed: 1500 * time.Microsecond},
			`{"strategy":"singleschema","complete":true,"elapsed_ms":1.5,"tenants":[],"unreachable":[]}`},
		{OpenSubtasksReport{Strategy: MultiDB, Elapsed: time.Second,
			Rows:        []TenantOpenSubtasks{{Slug: "tenant-0", Name: "A", OpenSubtasks: 2, ProjectsWithOpenSubtasks: 1}},
			Unreachable: []UnreachableTenant{{Slug: "tenant-1", Reason: "gone", Err: errors.New("SQLSTATE 3D000")}}},
			`{"strategy":"multidb","complete":false,"elapsed_ms":1000,"tenants":[{"slug":"tenant-0","name":"A","open_subtasks":2,"projects_with_open_subtasks":1}],"unreachable":[{"slug":"tenant-1","reason":"gone"}]}`},
	}
	for _, tt := range tests {
		got, err := json.Marshal(tt.rep)
		if err != nil || string(got) != tt.want {
			t.Errorf("json.Marshal(%+v) = %s, %v; want %s", tt.rep, got, err, tt.want)
		}
	}
}
