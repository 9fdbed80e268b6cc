package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"tenancy/models"
	"tenancy/strategy"
)

// The JSON write API on tenants' addresses (docs/writes.md):
//
//	GET    /api/subtasks/:id            200 the subtask, with its ETag
//	POST   /api/subtasks                201, Location and ETag
//	PATCH  /api/subtasks/:id            If-Match required (428); stale 412
//	DELETE /api/subtasks/:id            204; If-Match optional, stale 412
//	POST   /api/tasks/:id/complete      200 {"id", "is_complete": true}
//	GET    /api/tasks                   200 {"tasks": [...]}, what a subtask may go under
//
// A row of another tenant, or of none, is 404 and nothing is written;
// invalid input is 422 with the fields, and nothing is written.

// maxWriteBody bounds what one write may send: a subtask's longest name
// and details, each character up to 4 bytes, JSON-escaped, fit in it.
const maxWriteBody = 64 << 10

// maxTasksListed bounds the tasks one answer lists to pick from.
const maxTasksListed = 1000

// idPattern accepts canonical positive ids that fit a bigint.
var idPattern = regexp.MustCompile(`^[1-9][0-9]{0,18}$`)

// rowID is the :id of the path, or ok false when it cannot name a row
// (then it is a 404, as a row of no one is).
func rowID(c *gin.Context) (int64, bool) {
	raw := c.Param("id")
	if !idPattern.MatchString(raw) {
		return 0, false
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	return n, err == nil
}

// errNoSuchSubtask and errNoSuchTask are what a row the tenant does not
// have is told: the same whether another tenant has it or no one does.
var (
	errNoSuchSubtask = notFound("There is no such subtask in this account. Check its id; the list at /subtasks/ has links to every subtask.")
	errNoSuchTask    = notFound("There is no such task in this account. Check its id; /tasks/ lists the account's tasks.")
)

// writerTenant is the request's tenant; writes are only made at a
// tenant's own address (the base domain is every tenant's, read-only).
func writerTenant(c *gin.Context) (models.Account, error) {
	t, ok := models.TenantFromContext(c.Request.Context())
	if !ok {
		return models.Account{}, notFound("Writes are made at a tenant's own address, e.g. tenant-0.<base domain>; this address is read-only.")
	}
	return t, nil
}

// subtaskJSON is the API's subtask.
type subtaskJSON struct {
	ID         int64  `json:"id"`
	TaskID     int64  `json:"task_id"`
	Name       string `json:"name"`
	Details    string `json:"details"`
	IsComplete bool   `json:"is_complete"`
}

func sendSubtask(c *gin.Context, status int, st strategy.Subtask) {
	c.Header("ETag", etag(st.Version))
	c.JSON(status, subtaskJSON{ID: st.ID, TaskID: st.TaskID, Name: st.Name, Details: st.Details, IsComplete: st.IsComplete})
}

// etag is a version as a strong entity tag.
func etag(version string) string { return `"` + version + `"` }

// ifMatch reads If-Match: the versions it lists (strong tags only: a weak
// one never matches for a write, RFC 9110 13.1.1), any when "*", and
// whether the header was there at all.
func ifMatch(h http.Header) (versions []string, any, present bool) {
	values := h.Values("If-Match")
	for _, v := range values {
		for _, tag := range strings.Split(v, ",") {
			tag = strings.TrimSpace(tag)
			switch {
			case tag == "*":
				any = true
			case len(tag) >= 2 && tag[0] == '"' && tag[len(tag)-1] == '"':
				versions = append(versions, tag[1:len(tag)-1])
			}
		}
	}
	return versions, any, len(values) > 0
}

// versionFor is the one version a write is made against, given the
// versions If-Match lists: the single one listed, or, for "*" or a list,
// the current one if it is acceptable (the strategy compares it again
// under the row's lock). Nothing acceptable is ErrStale.
func versionFor(c *gin.Context, s strategy.Strategy, id int64, versions []string, any bool) (string, error) {
	if len(versions) == 1 && !any {
		return versions[0], nil
	}
	cur, err := s.GetSubtask(c.Request.Context(), id)
	if err != nil {
		return "", err
	}
	for _, v := range versions {
		if v == cur.Version {
			return v, nil
		}
	}
	if any {
		return cur.Version, nil
	}
	return "", strategy.ErrStale
}

// writeError answers a failed write: 422 with the fields for invalid
// input, 412 for a stale version, 404 for a row the tenant does not have;
// anything else as every page does.
func writeError(c *gin.Context, log *slog.Logger, err error, notFoundErr error) {
	var ve *strategy.ValidationError
	switch {
	case errors.As(err, &ve):
		fields := ve.Fields
		msg := "Some fields are not valid; nothing was saved. Correct them and send again."
		if wantsJSON(c) {
			c.Header("Cache-Control", "no-store")
			c.AbortWithStatusJSON(http.StatusUnprocessableEntity, gin.H{"error": msg, "status": http.StatusUnprocessableEntity, "fields": fields})
			return
		}
		renderError(c, log, &userError{http.StatusUnprocessableEntity, msg + " " + ve.Error()})
	case errors.Is(err, strategy.ErrNotFound):
		renderError(c, log, notFoundErr)
	case errors.Is(err, strategy.ErrStale):
		renderError(c, log, &userError{http.StatusPreconditionFailed, "The subtask has changed since you read it; nothing was saved. Read it again (GET, for its new ETag) and make your change on what it is now."})
	default:
		renderError(c, log, err)
	}
}

// bodyError is what a body that could not be read or decoded is told.
func bodyError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return &userError{http.StatusRequestEntityTooLarge, fmt.Sprintf("The request body is larger than %d KiB; send less.", maxWriteBody>>10)}
	}
	return badRequest("The body is not a JSON object; send e.g. {\"task_id\": 1, \"name\": \"...\", \"details\": \"...\", \"is_complete\": false}.")
}

// decodeBody reads the request's JSON object into dst: one object, no
// unknown field (a misspelt field would otherwise be ignored silently).
// A value of the wrong type is a *strategy.ValidationError on its field.
func decodeBody(c *gin.Context, dst any) error {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxWriteBody))
	if err != nil {
		return bodyError(err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err = dec.Decode(dst)
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return &strategy.ValidationError{Fields: map[string]string{typeErr.Field: "must be a JSON " + jsonKind(typeErr.Type.Kind().String())}}
	case err != nil && strings.HasPrefix(err.Error(), "json: unknown field "):
		return badRequest("The body has a field this API does not know: " + strings.TrimPrefix(err.Error(), "json: unknown field ") + ". It takes task_id, name, details and is_complete.")
	case err != nil:
		return bodyError(err)
	}
	if dec.More() {
		return bodyError(errors.New("data after the object"))
	}
	return nil
}

func jsonKind(goKind string) string {
	switch {
	case goKind == "string":
		return "string"
	case goKind == "bool":
		return "boolean (true or false)"
	case strings.HasPrefix(goKind, "int"):
		return "whole number"
	}
	return "value of another type"
}

// subtaskBody is a POST or PATCH body; nil fields were not sent.
type subtaskBody struct {
	TaskID     *int64  `json:"task_id"`
	Name       *string `json:"name"`
	Details    *string `json:"details"`
	IsComplete *bool   `json:"is_complete"`
}

func apiGetSubtask(s strategy.Strategy, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		if _, err := writerTenant(c); err != nil {
			renderError(c, log, err)
			return
		}
		id, ok := rowID(c)
		if !ok {
			renderError(c, log, errNoSuchSubtask)
			return
		}
		st, err := s.GetSubtask(c.Request.Context(), id)
		if err != nil {
			writeError(c, log, err, errNoSuchSubtask)
			return
		}
		sendSubtask(c, http.StatusOK, st)
	}
}

func apiCreateSubtask(s strategy.Strategy, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		if _, err := writerTenant(c); err != nil {
			renderError(c, log, err)
			return
		}
		var in subtaskBody
		if err := decodeBody(c, &in); err != nil {
			writeError(c, log, err, errNoSuchSubtask)
			return
		}
		ns := strategy.NewSubtask{}
		if in.TaskID != nil {
			ns.TaskID = *in.TaskID
		}
		if in.Name != nil {
			ns.Name = *in.Name
		}
		if in.Details != nil {
			ns.Details = *in.Details
		}
		if in.IsComplete != nil {
			ns.IsComplete = *in.IsComplete
		}
		st, err := s.CreateSubtask(c.Request.Context(), ns)
		if err != nil {
			writeError(c, log, err, errNoSuchTask)
			return
		}
		c.Header("Location", "/api/subtasks/"+strconv.FormatInt(st.ID, 10))
		sendSubtask(c, http.StatusCreated, st)
	}
}

func apiUpdateSubtask(s strategy.Strategy, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		if _, err := writerTenant(c); err != nil {
			renderError(c, log, err)
			return
		}
		id, ok := rowID(c)
		if !ok {
			renderError(c, log, errNoSuchSubtask)
			return
		}
		versions, any, present := ifMatch(c.Request.Header)
		if !present {
			renderError(c, log, &userError{http.StatusPreconditionRequired, "Send the subtask's ETag as If-Match (GET it first), so that a change made since you read it is not overwritten."})
			return
		}
		var in subtaskBody
		if err := decodeBody(c, &in); err != nil {
			writeError(c, log, err, errNoSuchSubtask)
			return
		}
		if in.TaskID != nil {
			writeError(c, log, &strategy.ValidationError{Fields: map[string]string{"task_id": "cannot be changed; create a subtask under the other task instead"}}, errNoSuchSubtask)
			return
		}
		change := strategy.SubtaskChange{Name: in.Name, Details: in.Details, IsComplete: in.IsComplete}
		if err := strategy.CheckChange(change); err != nil {
			// Invalid input is 422 whatever the version: nothing to
			// compare it against is needed to refuse it.
			writeError(c, log, err, errNoSuchSubtask)
			return
		}
		version, err := versionFor(c, s, id, versions, any)
		if err == nil {
			var st strategy.Subtask
			if st, err = s.UpdateSubtask(c.Request.Context(), id, version, change); err == nil {
				sendSubtask(c, http.StatusOK, st)
				return
			}
		}
		writeError(c, log, err, errNoSuchSubtask)
	}
}

func apiDeleteSubtask(s strategy.Strategy, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		if _, err := writerTenant(c); err != nil {
			renderError(c, log, err)
			return
		}
		id, ok := rowID(c)
		if !ok {
			renderError(c, log, errNoSuchSubtask)
			return
		}
		version := ""
		if versions, any, present := ifMatch(c.Request.Header); present {
			var err error
			if version, err = versionFor(c, s, id, versions, any); err != nil {
				writeError(c, log, err, errNoSuchSubtask)
				return
			}
		}
		if err := s.DeleteSubtask(c.Request.Context(), id, version); err != nil {
			writeError(c, log, err, errNoSuchSubtask)
			return
		}
		c.Status(http.StatusNoContent)
	}
}

func apiCompleteTask(s strategy.Strategy, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		if _, err := writerTenant(c); err != nil {
			renderError(c, log, err)
			return
		}
		id, ok := rowID(c)
		if !ok {
			renderError(c, log, errNoSuchTask)
			return
		}
		task, err := s.CompleteTask(c.Request.Context(), id)
		if err != nil {
			writeError(c, log, err, errNoSuchTask)
			return
		}
		c.JSON(http.StatusOK, gin.H{"id": task.ID, "is_complete": task.IsComplete})
	}
}

func apiListTasks(s strategy.Strategy, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		if _, err := writerTenant(c); err != nil {
			renderError(c, log, err)
			return
		}
		tasks, err := s.ListTasks(c.Request.Context(), maxTasksListed)
		if err != nil {
			renderError(c, log, err)
			return
		}
		if tasks == nil {
			tasks = []strategy.Task{}
		}
		c.JSON(http.StatusOK, gin.H{"tasks": tasks})
	}
}
