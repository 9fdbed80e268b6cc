package handlers_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"tenancy/strategy"
)

// send makes a request with body (form-encoded when form, JSON
// otherwise), headers, and host's signed-in session.
func (a app) send(method, host, path, body string, form bool, headers map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "http://placeholder"+path, strings.NewReader(body))
	req.Host = host
	if body != "" {
		if form {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			req.Header.Set("Content-Type", "application/json")
		}
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if ck := a.cookieFor(host); ck != nil {
		req.AddCookie(ck)
	}
	a.onBase(req)
	rec := httptest.NewRecorder()
	a.h.ServeHTTP(rec, req)
	return rec
}

type apiSubtask struct {
	ID         int64  `json:"id"`
	TaskID     int64  `json:"task_id"`
	Name       string `json:"name"`
	Details    string `json:"details"`
	IsComplete bool   `json:"is_complete"`
}

type apiError struct {
	Error  string            `json:"error"`
	Status int               `json:"status"`
	Fields map[string]string `json:"fields"`
}

func decode[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %T: %v\n%s", v, err, rec.Body)
	}
	return v
}

// subtaskAt reads subtask id on host through the API: its status, body
// and ETag.
func (a app) subtaskAt(t *testing.T, host string, id int64) (int, apiSubtask, string) {
	t.Helper()
	rec := a.send(http.MethodGet, host, fmt.Sprintf("/api/subtasks/%d", id), "", false, nil)
	if rec.Code != http.StatusOK {
		return rec.Code, apiSubtask{}, ""
	}
	return rec.Code, decode[apiSubtask](t, rec), rec.Header().Get("ETag")
}

func (a app) taskIDs(t *testing.T, host string) []int64 {
	t.Helper()
	rec := a.send(http.MethodGet, host, "/api/tasks", "", false, nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s/api/tasks = %d %s", host, rec.Code, rec.Body)
	}
	var out []int64
	for _, task := range decode[struct{ Tasks []strategy.Task }](t, rec).Tasks {
		out = append(out, task.ID)
	}
	return out
}

func (a app) subtaskIDs(t *testing.T, host string) []int64 {
	t.Helper()
	var out []int64
	for _, p := range a.allPages(t, host) {
		for _, r := range p.Rows {
			out = append(out, r.ID)
		}
	}
	return out
}

// TestWriteAPI drives the JSON write API in every strategy: each status it
// promises, and that tenant-1's rows are not found, and not changed, at
// tenant-0's address.
func TestWriteAPI(t *testing.T) {
	t.Parallel()
	for _, name := range strategy.Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a := newApp(t, name)
			host0, host1 := "tenant-0."+a.base+":8080", "tenant-1."+a.base+":8080"
			tasks0 := a.taskIDs(t, host0)

			rec := a.send(http.MethodPost, host0, "/api/subtasks", fmt.Sprintf(`{"task_id":%d,"name":"via the API","details":"d"}`, tasks0[0]), false, nil)
			if rec.Code != http.StatusCreated || rec.Header().Get("ETag") == "" {
				t.Fatalf("POST /api/subtasks = %d %s, want 201 with an ETag", rec.Code, rec.Body)
			}
			created := decode[apiSubtask](t, rec)
			if loc := rec.Header().Get("Location"); loc != fmt.Sprintf("/api/subtasks/%d", created.ID) {
				t.Errorf("POST Location = %q", loc)
			}
			if created.Name != "via the API" || created.TaskID != tasks0[0] || created.IsComplete {
				t.Errorf("POST = %+v", created)
			}
			code, got, tag := a.subtaskAt(t, host0, created.ID)
			if code != http.StatusOK || got != created || tag != rec.Header().Get("ETag") {
				t.Errorf("GET created = %d %+v %s", code, got, tag)
			}

			patch := func(id int64, body string, headers map[string]string) *httptest.ResponseRecorder {
				return a.send(http.MethodPatch, host0, fmt.Sprintf("/api/subtasks/%d", id), body, false, headers)
			}
			if rec := patch(created.ID, `{"is_complete":true}`, nil); rec.Code != http.StatusPreconditionRequired {
				t.Errorf("PATCH without If-Match = %d %s, want 428", rec.Code, rec.Body)
			}
			rec = patch(created.ID, `{"is_complete":true}`, map[string]string{"If-Match": tag})
			if rec.Code != http.StatusOK || rec.Header().Get("ETag") == tag || !decode[apiSubtask](t, rec).IsComplete {
				t.Fatalf("PATCH = %d %s (ETag %s), want 200, complete, a new ETag", rec.Code, rec.Body, rec.Header().Get("ETag"))
			}
			newTag := rec.Header().Get("ETag")
			if rec := patch(created.ID, `{"name":"lost"}`, map[string]string{"If-Match": tag}); rec.Code != http.StatusPreconditionFailed {
				t.Errorf("PATCH with the old ETag = %d %s, want 412", rec.Code, rec.Body)
			}
			if rec := patch(created.ID, `{"name":"lost"}`, map[string]string{"If-Match": "W/" + newTag}); rec.Code != http.StatusPreconditionFailed {
				t.Errorf("PATCH with a weak ETag = %d %s, want 412", rec.Code, rec.Body)
			}
			for _, tc := range []struct {
				body  string
				code  int
				field string
			}{
				{`{"name":""}`, http.StatusUnprocessableEntity, "name"},
				{`{"name":5}`, http.StatusUnprocessableEntity, "name"},
				{`{"details":"` + strings.Repeat("x", strategy.MaxSubtaskDetails+1) + `"}`, http.StatusUnprocessableEntity, "details"},
				{`{"task_id":1}`, http.StatusUnprocessableEntity, "task_id"},
				{`{"name":`, http.StatusBadRequest, ""},
				{`{"nmae":"typo"}`, http.StatusBadRequest, ""},
				{`{"name":"a"} {"name":"b"}`, http.StatusBadRequest, ""},
				{`{"name":"` + strings.Repeat("x", 70<<10) + `"}`, http.StatusRequestEntityTooLarge, ""},
			} {
				rec := patch(created.ID, tc.body, map[string]string{"If-Match": newTag})
				e := decode[apiError](t, rec)
				if rec.Code != tc.code || e.Status != tc.code || (tc.field != "" && e.Fields[tc.field] == "") {
					t.Errorf("PATCH %.40s = %d %s, want %d with field %q", tc.body, rec.Code, rec.Body, tc.code, tc.field)
				}
			}
			for _, tc := range []struct {
				body   string
				fields []string
			}{
				{`{}`, []string{"task_id", "name"}},
				{fmt.Sprintf(`{"task_id":%d,"name":"  "}`, tasks0[0]), []string{"name"}},
				{`{"task_id":999999999,"name":"no such task"}`, []string{"task_id"}},
				{`{"task_id":"1","name":"x"}`, []string{"task_id"}},
			} {
				rec := a.send(http.MethodPost, host0, "/api/subtasks", tc.body, false, nil)
				e := decode[apiError](t, rec)
				if rec.Code != http.StatusUnprocessableEntity || len(e.Fields) != len(tc.fields) {
					t.Errorf("POST %s = %d %s, want 422 on %v", tc.body, rec.Code, rec.Body, tc.fields)
				}
				for _, f := range tc.fields {
					if e.Fields[f] == "" {
						t.Errorf("POST %s: no message for %s in %s", tc.body, f, rec.Body)
					}
				}
			}
			if code, got, tag := a.subtaskAt(t, host0, created.ID); code != http.StatusOK || !got.IsComplete || got.Name != "via the API" || tag != newTag {
				t.Errorf("after refused PATCHes: %d %+v %s; want the first PATCH's state, ETag %s", code, got, tag, newTag)
			}

			// tenant-1's rows at tenant-0's address: an id tenant-0 has
			// no row with (multidb and multischema number each tenant's
			// rows from 1, so tenant-1 makes one past tenant-0's).
			own := a.subtaskIDs(t, host0)
			var theirs apiSubtask
			for theirs.ID == 0 || slices.Contains(own, theirs.ID) {
				rec := a.send(http.MethodPost, host1, "/api/subtasks", fmt.Sprintf(`{"task_id":%d,"name":"tenant-1's"}`, a.taskIDs(t, host1)[0]), false, nil)
				if rec.Code != http.StatusCreated {
					t.Fatalf("POST on %s = %d %s", host1, rec.Code, rec.Body)
				}
				theirs = decode[apiSubtask](t, rec)
			}
			_, _, theirTag := a.subtaskAt(t, host1, theirs.ID)
			path := fmt.Sprintf("/api/subtasks/%d", theirs.ID)
			for _, tc := range []struct {
				method, body string
				headers      map[string]string
			}{
				{http.MethodGet, "", nil},
				{http.MethodPatch, `{"name":"taken over","is_complete":true}`, map[string]string{"If-Match": theirTag}},
				{http.MethodPatch, `{"name":"taken over"}`, map[string]string{"If-Match": "*"}},
				{http.MethodDelete, "", map[string]string{"If-Match": theirTag}},
				{http.MethodDelete, "", nil},
			} {
				if rec := a.send(tc.method, host0, path, tc.body, false, tc.headers); rec.Code != http.StatusNotFound {
					t.Errorf("%s %s%s (tenant-1's) = %d %s, want 404", tc.method, host0, path, rec.Code, rec.Body)
				}
			}
			if foreign := slices.DeleteFunc(a.taskIDs(t, host1), func(id int64) bool { return slices.Contains(tasks0, id) }); len(foreign) > 0 {
				if rec := a.send(http.MethodPost, host0, fmt.Sprintf("/api/tasks/%d/complete", foreign[0]), "", false, nil); rec.Code != http.StatusNotFound {
					t.Errorf("complete tenant-1's task %d at tenant-0 = %d %s, want 404", foreign[0], rec.Code, rec.Body)
				}
				rec := a.send(http.MethodPost, host0, "/api/subtasks", fmt.Sprintf(`{"task_id":%d,"name":"under theirs"}`, foreign[0]), false, nil)
				if rec.Code != http.StatusUnprocessableEntity || decode[apiError](t, rec).Fields["task_id"] == "" {
					t.Errorf("POST under tenant-1's task %d at tenant-0 = %d %s, want 422 on task_id", foreign[0], rec.Code, rec.Body)
				}
			}
			if code, got, tag := a.subtaskAt(t, host1, theirs.ID); code != http.StatusOK || got != theirs || tag != theirTag {
				t.Errorf("tenant-1's subtask afterwards = %d %+v %s, want %+v %s", code, got, tag, theirs, theirTag)
			}

			// Signed out, or signed in on tenant-1: 401, nothing written.
			for _, tc := range []struct {
				what    string
				cookies []*http.Cookie
			}{{"no session", nil}, {"tenant-1's session", []*http.Cookie{a.cookieFor(host1)}}} {
				req := httptest.NewRequest(http.MethodDelete, "http://placeholder"+fmt.Sprintf("/api/subtasks/%d", created.ID), nil)
				req.Host = host0
				for _, c := range tc.cookies {
					req.AddCookie(c)
				}
				rec := httptest.NewRecorder()
				a.h.ServeHTTP(rec, req)
				if rec.Code != http.StatusUnauthorized {
					t.Errorf("DELETE at tenant-0 with %s = %d %s, want 401", tc.what, rec.Code, rec.Body)
				}
			}
			// The base domain is every tenant's and writes nothing, not
			// even for an operator.
			if rec := a.send(http.MethodPost, a.base+":8080", "/api/subtasks", `{"task_id":1,"name":"x"}`, false, nil); rec.Code != http.StatusNotFound {
				t.Errorf("POST /api/subtasks at the base domain = %d %s, want 404", rec.Code, rec.Body)
			}

			rec = a.send(http.MethodPost, host0, fmt.Sprintf("/api/tasks/%d/complete", tasks0[0]), "", false, nil)
			if rec.Code != http.StatusOK || strings.TrimSpace(rec.Body.String()) != fmt.Sprintf(`{"id":%d,"is_complete":true}`, tasks0[0]) {
				t.Errorf("complete task = %d %s", rec.Code, rec.Body)
			}
			if rec := a.send(http.MethodDelete, host0, fmt.Sprintf("/api/subtasks/%d", created.ID), "", false, map[string]string{"If-Match": tag}); rec.Code != http.StatusPreconditionFailed {
				t.Errorf("DELETE with the old ETag = %d %s, want 412", rec.Code, rec.Body)
			}
			if rec := a.send(http.MethodDelete, host0, fmt.Sprintf("/api/subtasks/%d", created.ID), "", false, map[string]string{"If-Match": newTag}); rec.Code != http.StatusNoContent {
				t.Errorf("DELETE = %d %s, want 204", rec.Code, rec.Body)
			}
			if code, _, _ := a.subtaskAt(t, host0, created.ID); code != http.StatusNotFound {
				t.Errorf("GET after DELETE = %d, want 404", code)
			}
			for _, id := range []string{"0", "-1", "01", "abc", "99999999999999999999"} {
				if rec := a.send(http.MethodGet, host0, "/api/subtasks/"+id, "", false, nil); rec.Code != http.StatusNotFound || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
					t.Errorf("GET /api/subtasks/%s = %d %s, want a JSON 404", id, rec.Code, rec.Body)
				}
			}
		})
	}
}

var versionField = regexp.MustCompile(`name="version" value="([0-9a-f]+)"`)

// TestWriteForms drives the HTML forms in every strategy: an edit saved
// and seen on reload, a stale save re-rendered instead of overwriting,
// field messages, a new subtask, a delete, a task completed, and
// tenant-1's rows not found at tenant-0's address.
func TestWriteForms(t *testing.T) {
	t.Parallel()
	for _, name := range strategy.Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a := newApp(t, name)
			host0, host1 := "tenant-0."+a.base+":8080", "tenant-1."+a.base+":8080"
			post := func(host, path string, form url.Values) *httptest.ResponseRecorder {
				return a.send(http.MethodPost, host, path, form.Encode(), true, nil)
			}
			id := a.page(t, host0, 1).Rows[0].ID
			editPath := fmt.Sprintf("/subtask/%d/", id)
			if list := a.get(host0, "/subtasks/", false); !strings.Contains(list.Body.String(), `href="`+editPath+`"`) {
				t.Errorf("the list does not link to %s:\n%s", editPath, list.Body)
			}
			rec := a.get(host0, editPath, false)
			m := versionField.FindStringSubmatch(rec.Body.String())
			if rec.Code != http.StatusOK || m == nil {
				t.Fatalf("GET %s = %d, version %v\n%s", editPath, rec.Code, m, rec.Body)
			}
			version := m[1]

			rec = post(host0, editPath, url.Values{"name": {"Edited in a form"}, "details": {"two\nlines"}, "is_complete": {"on"}, "version": {version}})
			if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != editPath+"?saved=1" {
				t.Fatalf("POST %s = %d %s, want 303 back", editPath, rec.Code, rec.Body)
			}
			rec = a.get(host0, editPath+"?saved=1", false)
			if body := rec.Body.String(); !strings.Contains(body, `value="Edited in a form"`) || !strings.Contains(body, "two\nlines</textarea>") || !strings.Contains(body, " checked>") || !strings.Contains(body, "Saved.") {
				t.Errorf("the edit is not shown on reload:\n%s", body)
			}
			if _, got, _ := a.subtaskAt(t, host0, id); got.Name != "Edited in a form" || !got.IsComplete {
				t.Errorf("the API after the form's save = %+v", got)
			}

			// The version the form was opened with is stale now.
			rec = post(host0, editPath, url.Values{"name": {"Lost update"}, "details": {""}, "version": {version}})
			if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "Someone changed this subtask") || !strings.Contains(rec.Body.String(), `value="Edited in a form"`) {
				t.Errorf("stale save = %d, want 409 showing the subtask as it is now\n%s", rec.Code, rec.Body)
			}
			if rec := post(host0, editPath+"delete", url.Values{"version": {version}}); rec.Code != http.StatusConflict {
				t.Errorf("stale delete = %d, want 409", rec.Code)
			}
			_, now, _ := a.subtaskAt(t, host0, id)
			if now.Name != "Edited in a form" {
				t.Errorf("after stale writes the subtask is %+v", now)
			}
			current := versionField.FindStringSubmatch(a.get(host0, editPath, false).Body.String())[1]
			rec = post(host0, editPath, url.Values{"name": {""}, "details": {"kept"}, "version": {current}})
			if rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), "Name must not be empty.") || !strings.Contains(rec.Body.String(), "kept</textarea>") {
				t.Errorf("empty name = %d, want 422 with the field's message and what was typed\n%s", rec.Code, rec.Body)
			}

			// New subtask under a task picked from the tenant's tasks.
			rec = a.get(host0, "/subtask/new", false)
			opt := regexp.MustCompile(`<option value="([0-9]+)"`).FindStringSubmatch(rec.Body.String())
			if rec.Code != http.StatusOK || opt == nil {
				t.Fatalf("GET /subtask/new = %d\n%s", rec.Code, rec.Body)
			}
			if rec := post(host0, "/subtask/new", url.Values{"task_id": {opt[1]}, "name": {""}}); rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), "Name must not be empty.") {
				t.Errorf("new with no name = %d\n%s", rec.Code, rec.Body)
			}
			rec = post(host0, "/subtask/new", url.Values{"task_id": {opt[1]}, "name": {"Made in a form"}})
			var newID int64
			if _, err := fmt.Sscanf(rec.Header().Get("Location"), "/subtask/%d/?saved=1", &newID); rec.Code != http.StatusSeeOther || err != nil {
				t.Fatalf("POST /subtask/new = %d, Location %q", rec.Code, rec.Header().Get("Location"))
			}
			newPath := fmt.Sprintf("/subtask/%d/", newID)
			v := versionField.FindStringSubmatch(a.get(host0, newPath, false).Body.String())[1]
			if rec := post(host0, newPath+"delete", url.Values{"version": {v}}); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/subtasks/" {
				t.Errorf("delete = %d %q", rec.Code, rec.Header().Get("Location"))
			}
			if rec := a.get(host0, newPath, false); rec.Code != http.StatusNotFound {
				t.Errorf("GET %s after delete = %d, want 404", newPath, rec.Code)
			}

			if rec := a.get(host0, "/tasks/", false); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "/task/"+opt[1]+"/complete") {
				t.Errorf("GET /tasks/ = %d\n%s", rec.Code, rec.Body)
			}
			if rec := post(host0, "/task/"+opt[1]+"/complete", url.Values{"next": {editPath}}); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != editPath {
				t.Errorf("complete task = %d %q", rec.Code, rec.Header().Get("Location"))
			}

			// tenant-1's subtask, by an id tenant-0 lacks, at tenant-0's address.
			own := a.subtaskIDs(t, host0)
			theirs := int64(0)
			for theirs == 0 || slices.Contains(own, theirs) {
				rec := post(host1, "/subtask/new", url.Values{"task_id": {fmt.Sprint(a.taskIDs(t, host1)[0])}, "name": {"tenant-1's"}})
				if _, err := fmt.Sscanf(rec.Header().Get("Location"), "/subtask/%d/", &theirs); err != nil {
					t.Fatalf("new subtask on tenant-1 = %d %s", rec.Code, rec.Body)
				}
			}
			theirPath := fmt.Sprintf("/subtask/%d/", theirs)
			theirVersion := versionField.FindStringSubmatch(a.get(host1, theirPath, false).Body.String())[1]
			for _, tc := range []struct {
				method, path string
				form         url.Values
			}{
				{http.MethodGet, theirPath, nil},
				{http.MethodPost, theirPath, url.Values{"name": {"taken over"}, "version": {theirVersion}}},
				{http.MethodPost, theirPath + "delete", url.Values{"version": {theirVersion}}},
			} {
				if rec := a.send(tc.method, host0, tc.path, tc.form.Encode(), true, nil); rec.Code != http.StatusNotFound {
					t.Errorf("%s %s%s (tenant-1's) = %d, want 404", tc.method, host0, tc.path, rec.Code)
				}
			}
			if rec := a.get(host1, theirPath, false); !strings.Contains(rec.Body.String(), `value="tenant-1&#39;s"`) || !strings.Contains(rec.Body.String(), theirVersion) {
				t.Errorf("tenant-1's subtask changed:\n%s", rec.Body)
			}
		})
	}
}
