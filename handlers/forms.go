package handlers

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"tenancy/models"
	"tenancy/strategy"
)

// The HTML forms on tenants' addresses, over the same strategy.Writer as
// the JSON API (docs/writes.md):
//
//	GET  /tasks/                 the tenant's tasks: complete one, add a subtask under one
//	POST /task/:id/complete      mark a task complete, then back to next
//	GET  /subtask/new            the new-subtask form (?task=<id> picks the task)
//	POST /subtask/new            create; 303 to the new subtask's page
//	GET  /subtask/:id/           the edit form, carrying the version it shows
//	POST /subtask/:id/           save; a stale version re-renders (409) instead of overwriting
//	POST /subtask/:id/delete     delete the version shown; stale re-renders (409)
//
// Invalid input re-renders the form with each field's message (422) and
// writes nothing. Cross-origin posts are refused before they get here
// (crossOriginProtection), so the forms carry no token.

// subtaskForm is what the edit and new forms show.
type subtaskForm struct {
	Title      string
	Tenant     models.Account
	ID         int64 // 0: a new subtask
	TaskID     int64
	Name       string
	Details    string
	IsComplete bool
	Version    string
	Tasks      []strategy.Task // the new form's choice
	Errors     map[string]string
	Message    string
	Saved      bool
	MaxName    int
	MaxDetails int
}

func renderSubtaskForm(c *gin.Context, status int, f subtaskForm) {
	f.MaxName, f.MaxDetails = strategy.MaxSubtaskName, strategy.MaxSubtaskDetails
	page := "subtask_edit.html"
	if f.ID == 0 {
		page = "subtask_new.html"
	}
	c.HTML(status, page, f)
}

// formOf is the form of subtask st as stored.
func formOf(t models.Account, st strategy.Subtask) subtaskForm {
	return subtaskForm{Title: "Subtask " + strconv.FormatInt(st.ID, 10) + " · " + t.Slug, Tenant: t, ID: st.ID, TaskID: st.TaskID,
		Name: st.Name, Details: st.Details, IsComplete: st.IsComplete, Version: st.Version}
}

// readForm parses a posted form within maxWriteBody.
func readForm(c *gin.Context) error {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxWriteBody)
	if err := c.Request.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return bodyError(err)
		}
		return badRequest("The form could not be read; submit it again from its page.")
	}
	return nil
}

// fieldErrors are err's fields when it is invalid input.
func fieldErrors(err error) (map[string]string, bool) {
	var ve *strategy.ValidationError
	if errors.As(err, &ve) {
		return ve.Fields, true
	}
	return nil, false
}

func editSubtaskPage(s strategy.Strategy, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		t, err := writerTenant(c)
		if err != nil {
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
		f := formOf(t, st)
		f.Saved = c.Query("saved") != ""
		renderSubtaskForm(c, http.StatusOK, f)
	}
}

// staleForm re-renders subtask id as it is now, saying why nothing was
// saved; or answers the error that reading it gave.
func staleForm(c *gin.Context, s strategy.Strategy, log *slog.Logger, t models.Account, id int64, message string) {
	cur, err := s.GetSubtask(c.Request.Context(), id)
	if err != nil {
		writeError(c, log, err, errNoSuchSubtask)
		return
	}
	f := formOf(t, cur)
	f.Message = message
	renderSubtaskForm(c, http.StatusConflict, f)
}

const staleMessage = "Someone changed this subtask after you opened it, so your change was not saved. This is the subtask as it is now: make your change again."

func saveSubtask(s strategy.Strategy, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		t, err := writerTenant(c)
		if err != nil {
			renderError(c, log, err)
			return
		}
		id, ok := rowID(c)
		if !ok {
			renderError(c, log, errNoSuchSubtask)
			return
		}
		if err := readForm(c); err != nil {
			renderError(c, log, err)
			return
		}
		form := c.Request.PostForm
		name, details, done := form.Get("name"), form.Get("details"), form.Get("is_complete") != ""
		version := form.Get("version")
		st, err := s.UpdateSubtask(c.Request.Context(), id, version, strategy.SubtaskChange{Name: &name, Details: &details, IsComplete: &done})
		if err == nil {
			c.Redirect(http.StatusSeeOther, "/subtask/"+strconv.FormatInt(st.ID, 10)+"/?saved=1")
			return
		}
		if fields, ok := fieldErrors(err); ok {
			if fields["version"] != "" {
				staleForm(c, s, log, t, id, "This form did not say which version of the subtask it edits; nothing was saved. This is the subtask as it is now: make your change again.")
				return
			}
			cur, err := s.GetSubtask(c.Request.Context(), id)
			if err != nil {
				writeError(c, log, err, errNoSuchSubtask)
				return
			}
			// What was typed, to correct, against the version it was
			// typed on (a save after the correction may still be stale).
			f := formOf(t, cur)
			f.Name, f.Details, f.IsComplete, f.Version = name, details, done, version
			f.Errors, f.Message = fields, "Nothing was saved: correct the fields marked below."
			renderSubtaskForm(c, http.StatusUnprocessableEntity, f)
			return
		}
		if errors.Is(err, strategy.ErrStale) {
			staleForm(c, s, log, t, id, staleMessage)
			return
		}
		writeError(c, log, err, errNoSuchSubtask)
	}
}

func deleteSubtaskForm(s strategy.Strategy, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		t, err := writerTenant(c)
		if err != nil {
			renderError(c, log, err)
			return
		}
		id, ok := rowID(c)
		if !ok {
			renderError(c, log, errNoSuchSubtask)
			return
		}
		if err := readForm(c); err != nil {
			renderError(c, log, err)
			return
		}
		version := c.Request.PostForm.Get("version")
		if version == "" {
			// A form always carries the version it shows: deleting
			// what the user has not seen is refused as stale.
			staleForm(c, s, log, t, id, "This form did not say which version of the subtask it deletes; nothing was deleted. This is the subtask as it is now.")
			return
		}
		err = s.DeleteSubtask(c.Request.Context(), id, version)
		switch {
		case err == nil:
			c.Redirect(http.StatusSeeOther, "/subtasks/")
		case errors.Is(err, strategy.ErrStale):
			staleForm(c, s, log, t, id, "Someone changed this subtask after you opened it, so it was not deleted. This is the subtask as it is now: delete it again if you still mean to.")
		default:
			writeError(c, log, err, errNoSuchSubtask)
		}
	}
}

func newSubtaskPage(s strategy.Strategy, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		t, err := writerTenant(c)
		if err != nil {
			renderError(c, log, err)
			return
		}
		tasks, err := s.ListTasks(c.Request.Context(), maxTasksListed)
		if err != nil {
			renderError(c, log, err)
			return
		}
		renderSubtaskForm(c, http.StatusOK, subtaskForm{Title: "New subtask · " + t.Slug, Tenant: t, TaskID: atoi(c.Query("task")), Tasks: tasks})
	}
}

func createSubtaskForm(s strategy.Strategy, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		t, err := writerTenant(c)
		if err != nil {
			renderError(c, log, err)
			return
		}
		if err := readForm(c); err != nil {
			renderError(c, log, err)
			return
		}
		form := c.Request.PostForm
		in := strategy.NewSubtask{TaskID: atoi(form.Get("task_id")), Name: form.Get("name"), Details: form.Get("details"), IsComplete: form.Get("is_complete") != ""}
		st, err := s.CreateSubtask(c.Request.Context(), in)
		if err == nil {
			c.Redirect(http.StatusSeeOther, "/subtask/"+strconv.FormatInt(st.ID, 10)+"/?saved=1")
			return
		}
		fields, ok := fieldErrors(err)
		if !ok {
			writeError(c, log, err, errNoSuchTask)
			return
		}
		tasks, lerr := s.ListTasks(c.Request.Context(), maxTasksListed)
		if lerr != nil {
			renderError(c, log, lerr)
			return
		}
		renderSubtaskForm(c, http.StatusUnprocessableEntity, subtaskForm{Title: "New subtask · " + t.Slug, Tenant: t, TaskID: in.TaskID,
			Name: in.Name, Details: in.Details, IsComplete: in.IsComplete, Tasks: tasks, Errors: fields,
			Message: "Nothing was saved: correct the fields marked below."})
	}
}

func tasksPage(s strategy.Strategy, log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		t, err := writerTenant(c)
		if err != nil {
			renderError(c, log, err)
			return
		}
		tasks, err := s.ListTasks(c.Request.Context(), maxTasksListed)
		if err != nil {
			renderError(c, log, err)
			return
		}
		c.HTML(http.StatusOK, "tasks.html", gin.H{"Title": "Tasks · " + t.Slug, "Tenant": t, "Tasks": tasks, "Max": maxTasksListed, "Completed": c.Query("completed")})
	}
}

func completeTaskForm(s strategy.Strategy, log *slog.Logger) gin.HandlerFunc {
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
		if err := readForm(c); err != nil {
			renderError(c, log, err)
			return
		}
		if _, err := s.CompleteTask(c.Request.Context(), id); err != nil {
			writeError(c, log, err, errNoSuchTask)
			return
		}
		next := safeNext(c.Request.PostForm.Get("next"))
		if next == "" {
			next = "/tasks/?completed=" + strconv.FormatInt(id, 10)
		}
		c.Redirect(http.StatusSeeOther, next)
	}
}

// atoi is a positive id from a form, or 0 (which validation refuses).
func atoi(s string) int64 {
	if !idPattern.MatchString(s) {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0
	}
	return n
}
