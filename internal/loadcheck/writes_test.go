package loadcheck

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeAPI is a small in-memory stand-in for the server's JSON API as the
// shared contract describes it (GET, POST, PATCH with If-Match, DELETE
// of /api/subtasks, and the JSON subtask list), enough to test the load
// generator; the real API is tested against the database elsewhere.
type fakeAPI struct {
	mu       sync.Mutex
	tenants  map[string]map[int64]*fakeSubtask
	nextID   int64
	patches  int
	ifMatch  int // PATCHes that carried the current ETag
	breakDel bool
	stale    bool // answer every PATCH 412
}

type fakeSubtask struct {
	apiSubtask
	version int
}

func (s *fakeSubtask) etag() string { return fmt.Sprintf(`"v%d"`, s.version) }

func newFakeAPI(tenants []string, perTenant int) *fakeAPI {
	f := &fakeAPI{tenants: map[string]map[int64]*fakeSubtask{}}
	for _, slug := range tenants {
		rows := map[int64]*fakeSubtask{}
		for i := range perTenant {
			f.nextID++
			rows[f.nextID] = &fakeSubtask{apiSubtask: apiSubtask{ID: f.nextID, TaskID: int64(100 + i%3), Name: fmt.Sprintf("s%d", i)}}
		}
		f.tenants[slug] = rows
	}
	return f
}

func (f *fakeAPI) sizes() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for slug, rows := range f.tenants {
		out[slug] = len(rows)
	}
	return out
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	tenant, _, _ := strings.Cut(r.Host, ".")
	rows, ok := f.tenants[tenant]
	if !ok {
		http.Error(w, `{"error":"no such tenant"}`, http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	send := func(status int, s *fakeSubtask) {
		w.Header().Set("ETag", s.etag())
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(s.apiSubtask)
	}
	if strings.HasPrefix(r.URL.Path, "/subtasks/") {
		ids := make([]int64, 0, len(rows))
		for id := range rows {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		n := 1
		fmt.Sscanf(r.URL.Path, "/subtasks/%d/", &n)
		pages := max(1, (len(ids)+9)/10)
		if n < 1 || n > pages {
			http.Error(w, `{"error":"There is no such page."}`, http.StatusNotFound)
			return
		}
		p := page{Page: n, Pages: pages, Total: len(ids)}
		for _, id := range ids[min(len(ids), (n-1)*10):min(len(ids), n*10)] {
			p.Rows = append(p.Rows, row{ID: id, Name: rows[id].Name, Account: tenant})
		}
		_ = json.NewEncoder(w).Encode(p)
		return
	}
	if r.URL.Path == "/api/subtasks" && r.Method == http.MethodPost {
		var in apiSubtask
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.TaskID == 0 || in.Name == "" {
			http.Error(w, `{"error":"invalid","status":422}`, http.StatusUnprocessableEntity)
			return
		}
		f.nextID++
		in.ID = f.nextID
		s := &fakeSubtask{apiSubtask: in}
		rows[in.ID] = s
		w.Header().Set("Location", "/api/subtasks/"+strconv.FormatInt(in.ID, 10))
		send(http.StatusCreated, s)
		return
	}
	id, err := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/api/subtasks/"), 10, 64)
	s, ok := rows[id]
	if err != nil || !ok {
		http.Error(w, `{"error":"no such subtask","status":404}`, http.StatusNotFound)
		return
	}
	switch r.Method {
	case http.MethodGet:
		send(http.StatusOK, s)
	case http.MethodPatch:
		f.patches++
		match := r.Header.Get("If-Match")
		switch {
		case match == "":
			http.Error(w, `{"error":"If-Match needed","status":428}`, http.StatusPreconditionRequired)
			return
		case match != s.etag() || f.stale:
			http.Error(w, `{"error":"changed","status":412}`, http.StatusPreconditionFailed)
			return
		}
		f.ifMatch++
		var in struct {
			IsComplete *bool `json:"is_complete"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.IsComplete == nil {
			http.Error(w, `{"error":"invalid","status":422}`, http.StatusUnprocessableEntity)
			return
		}
		s.IsComplete = *in.IsComplete
		s.version++
		send(http.StatusOK, s)
	case http.MethodDelete:
		if f.breakDel {
			http.Error(w, `{"error":"broken","status":500}`, http.StatusInternalServerError)
			return
		}
		delete(rows, id)
		w.WriteHeader(http.StatusNoContent)
	}
}

func TestRunMixesWrites(t *testing.T) {
	tenants := []string{"tenant-0", "tenant-1", "tenant-2"}
	tests := []struct {
		name                      string
		writes                    float64
		tenants                   []string
		breakDel, stale           bool
		wantFailed, wantConflicts bool
	}{
		{"a tenth writes", 0.1, tenants, false, false, false, false},
		{"writes only, one tenant", 1, tenants[:1], false, false, false, false},
		{"every PATCH stale", 0.5, tenants, false, true, false, true},
		{"deletes fail", 0.5, tenants, true, false, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// 30 subtasks: 3 full pages, so that a create adds a fourth for a while.
			api := newFakeAPI(tt.tenants, 30)
			api.breakDel, api.stale = tt.breakDel, tt.stale
			srv := httptest.NewServer(api)
			t.Cleanup(srv.Close)
			before := api.sizes()
			res, err := Run(context.Background(), Options{
				URL: srv.URL, BaseDomain: "localhost", Tenants: tt.tenants, Requests: 2000, Concurrency: 4, Writes: tt.writes,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.LeakedRows != 0 || res.Mismatches != 0 {
				t.Errorf("%d leaked rows, %d mismatches (%v), want none", res.LeakedRows, res.Mismatches, res.Problems)
			}
			if got := res.Failed > 0; got != tt.wantFailed {
				t.Errorf("Failed = %d (%v), want failures: %v", res.Failed, res.Answers, tt.wantFailed)
			}
			// Two workers may toggle one subtask at once, so a conflict
			// or two is no fault; a stale ETag must always be one.
			if tt.wantConflicts && (res.Conflicts == 0 || api.ifMatch != 0) {
				t.Errorf("Conflicts = %d, %d PATCHes accepted: want every PATCH a conflict", res.Conflicts, api.ifMatch)
			}
			if res.Reads.Requests+res.Writes.Requests != res.Requests || res.Reads.OK+res.Writes.OK != res.OK {
				t.Errorf("reads %+v + writes %+v do not add up to %d requests, %d OK", res.Reads, res.Writes, res.Requests, res.OK)
			}
			if res.Writes.Requests == 0 || res.Reads.OK == 0 {
				t.Errorf("reads %+v, writes %+v: want both", res.Reads, res.Writes)
			}
			if !tt.stale && !tt.breakDel && (res.Writes.OK == 0 || res.Writes.Latency.P99 <= 0 || api.ifMatch == 0) {
				t.Errorf("writes %+v, %d PATCHes with the current ETag: want writes done and timed", res.Writes, api.ifMatch)
			}
			if tt.writes == 0.1 {
				// About one turn in ten writes; a toggle's GET is a read.
				if share := float64(res.Writes.Requests) / float64(res.Requests); share < 0.05 || share > 0.15 {
					t.Errorf("writes are %.3f of requests, want about 0.1", share)
				}
			}
			if after := api.sizes(); !tt.breakDel && !mapsEqual(before, after) {
				t.Errorf("tenant sizes %v before, %v after: creates and deletes should pair up", before, after)
			}
		})
	}
	if _, err := Run(context.Background(), Options{URL: "http://127.0.0.1:1", BaseDomain: "localhost", Tenants: tenants, Writes: 0.1,
		Expect: map[string]Expectation{"tenant-0": {Total: 1}}}); err == nil {
		t.Error("Writes with Expect: no error")
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
