package loadcheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// A load with Options.Writes above 0 mixes writes through the JSON API
// into the page reads: a worker's writes cycle through toggle, create,
// toggle, delete, so that each tenant's size stays where it was (give or
// take the subtasks created and not yet deleted, at most one a worker,
// deleted when the run ends). A toggle reads the subtask for its ETag
// (GET /api/subtasks/<id>) and flips is_complete with If-Match (PATCH); a
// 412 there means another worker changed it in between, which is the API
// doing its job, and is counted as a conflict, not a failure. A create
// posts a subtask under a task of the tenant's (learnt from a toggle's
// GET); the delete removes a subtask the same worker created.

// OpStats are one kind of request's share of a run.
type OpStats struct {
	// Requests answered (OK or not), OK and Failed.
	Requests, OK, Failed int
	// Latency of the OK ones, as measured (not corrected).
	Latency Percentiles
}

// apiSubtask is the JSON API's subtask.
type apiSubtask struct {
	ID         int64  `json:"id"`
	TaskID     int64  `json:"task_id"`
	Name       string `json:"name"`
	Details    string `json:"details"`
	IsComplete bool   `json:"is_complete"`
}

// known is what the workers have learnt about a tenant's subtasks: ids
// seen on its pages (never ones a run created, which another worker may
// be deleting) and a task to create subtasks under.
type known struct {
	mu     sync.Mutex
	ids    []int64 // a ring of the last few seen
	next   int
	taskID int64
}

const knownIDs = 64

func (k *known) saw(ids []int64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, id := range ids {
		if len(k.ids) < knownIDs {
			k.ids = append(k.ids, id)
			continue
		}
		k.ids[k.next] = id
		k.next = (k.next + 1) % knownIDs
	}
}

func (k *known) pick(rng *rand.Rand) (int64, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.ids) == 0 {
		return 0, false
	}
	return k.ids[rng.IntN(len(k.ids))], true
}

func (k *known) task() int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.taskID
}

func (k *known) setTask(id int64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.taskID == 0 {
		k.taskID = id
	}
}

// createdName names the subtasks a run creates. Toggles leave them
// alone, as their creator may be deleting them: a page can list one
// before its creator has the answer that says its id.
const createdName = "loadcheck: created, to be deleted"

// writer is one worker's state for writes.
type writer struct {
	n       int // writes done, which picks the next kind
	pending []pendingCreate
}

type pendingCreate struct {
	ts *tenantState
	id int64
}

// write does the worker's next write for tenant ts, or a page read when
// it knows nothing yet to write to.
func (r *runner) write(ctx context.Context, rng *rand.Rand, w *writer, ts *tenantState, t *tally) {
	kind := w.n % 4
	if kind == 3 && len(w.pending) == 0 {
		kind = 0
	}
	if kind == 1 && ts.known.task() == 0 {
		kind = 0
	}
	switch kind {
	case 0, 2:
		id, ok := ts.known.pick(rng)
		if !ok {
			r.one(ctx, ts, "/subtasks/", 1, t)
			return
		}
		r.toggle(ctx, ts, id, t)
	case 1:
		r.create(ctx, w, ts, t)
	case 3:
		p := w.pending[0]
		w.pending = w.pending[1:]
		r.delete(ctx, p, t)
	}
	w.n++
}

// answer is what one API request got.
type answer struct {
	status  int
	header  http.Header
	body    []byte
	elapsed time.Duration
}

// send does one request for ts and reads its answer; an error means no
// answer (ended=true when the run ended, which is nobody's failure).
func (r *runner) send(ctx context.Context, ts *tenantState, method, path string, body any, ifMatch string) (a answer, ended bool, err error) {
	reqCtx, cancel := context.WithTimeout(ctx, r.o.RequestTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return a, false, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(reqCtx, method, r.base.JoinPath(path).String(), rd)
	if err != nil {
		return a, false, err
	}
	req.Host = ts.host
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	if c := r.o.Sessions[ts.slug]; c != "" {
		req.Header.Set("Cookie", c)
	}
	start := time.Now()
	resp, err := r.o.Client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return a, true, err
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return a, false, err
	}
	a.body, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	a.elapsed = time.Since(start)
	a.status, a.header = resp.StatusCode, resp.Header
	if err != nil {
		return a, ctx.Err() != nil, fmt.Errorf("reading the answer: %w", err)
	}
	return a, false, nil
}

func (r *runner) toggle(ctx context.Context, ts *tenantState, id int64, t *tally) {
	path := "/api/subtasks/" + strconv.FormatInt(id, 10)
	got, ok := r.apiCall(ctx, ts, http.MethodGet, path, nil, "", http.StatusOK, false, t)
	if !ok {
		return
	}
	etag := got.header.Get("ETag")
	var s apiSubtask
	if err := json.Unmarshal(got.body, &s); err != nil || s.ID != id || etag == "" {
		t.fail(ts.slug, "GET "+path, got.status, fmt.Sprintf("want subtask %d as JSON with an ETag, got %.100q (ETag %q)", id, got.body, etag))
		return
	}
	ts.known.setTask(s.TaskID)
	patched, ok := r.apiCall(ctx, ts, http.MethodPatch, path, map[string]bool{"is_complete": !s.IsComplete}, etag, http.StatusOK, true, t)
	if !ok {
		return
	}
	var after apiSubtask
	if err := json.Unmarshal(patched.body, &after); err != nil || after.ID != id || after.IsComplete == s.IsComplete {
		t.mismatch(ts.slug, "PATCH "+path, fmt.Sprintf("is_complete %v should have become %v: answered %.100q", s.IsComplete, !s.IsComplete, patched.body))
	}
}

func (r *runner) create(ctx context.Context, w *writer, ts *tenantState, t *tally) {
	task := ts.known.task()
	body := map[string]any{"task_id": task, "name": createdName, "details": "created by a load that writes, and deleted by it", "is_complete": false}
	got, ok := r.apiCall(ctx, ts, http.MethodPost, "/api/subtasks", body, "", http.StatusCreated, true, t)
	if !ok {
		return
	}
	var s apiSubtask
	if err := json.Unmarshal(got.body, &s); err != nil || s.ID <= 0 || s.TaskID != task {
		t.mismatch(ts.slug, "POST /api/subtasks", fmt.Sprintf("want a subtask of task %d, got %.100q", task, got.body))
		return
	}
	w.pending = append(w.pending, pendingCreate{ts, s.ID})
}

func (r *runner) delete(ctx context.Context, p pendingCreate, t *tally) {
	r.apiCall(ctx, p.ts, http.MethodDelete, "/api/subtasks/"+strconv.FormatInt(p.id, 10), nil, "", http.StatusNoContent, true, t)
}

// apiCall sends one API request and counts it as a read or a write: OK
// when the status is want, a conflict on 412 to a write, a failure
// otherwise.
func (r *runner) apiCall(ctx context.Context, ts *tenantState, method, path string, body any, ifMatch string, want int, isWrite bool, t *tally) (answer, bool) {
	got, ended, err := r.send(ctx, ts, method, path, body, ifMatch)
	label := method + " " + path
	switch {
	case ended:
		return got, false
	case err != nil:
		t.failOp(ts.slug, label, got.status, err.Error(), isWrite)
		return got, false
	case got.status == want:
		t.okOp(ts.slug, got.elapsed, isWrite)
		return got, true
	case isWrite && got.status == http.StatusPreconditionFailed:
		t.conflict(ts.slug, got.elapsed)
		return got, false
	}
	resp := &http.Response{StatusCode: got.status, Header: got.header}
	t.failOp(ts.slug, label, got.status, failureMessage(resp, got.body, r.o.Sessions[ts.slug] != ""), isWrite)
	return got, false
}

// cleanUp deletes what the workers created and had not deleted when the
// run ended, so that the tenants keep their size.
func (r *runner) cleanUp(ctx context.Context, writers []*writer) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	discard := newTally(0, time.Now())
	for _, w := range writers {
		for _, p := range w.pending {
			r.delete(ctx, p, discard)
		}
		w.pending = nil
	}
}
