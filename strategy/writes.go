package strategy

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Errors of the write operations (Writer), told apart with errors.Is.
var (
	// ErrNotFound: the tenant has no row with that id. A row of another
	// tenant is this too, never a write.
	ErrNotFound = errors.New("not found")
	// ErrStale: the row changed since the version the caller read; nothing
	// was written.
	ErrStale = errors.New("changed since it was read")
	// ErrInvalid: the input was refused before anything was written; the
	// error is a *ValidationError that says which fields and why.
	ErrInvalid = errors.New("invalid input")
)

// ValidationError says what is wrong with each field of a write's input,
// by the field's JSON name ("name", "details", "task_id"). Nothing was
// written. errors.Is(err, ErrInvalid) holds for it.
type ValidationError struct {
	Fields map[string]string
}

func (e *ValidationError) Error() string {
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + e.Fields[k]
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// Limits on what a subtask may hold. The columns are text, unbounded: these
// bound what one request can make the database store, far above anything
// seed writes.
const (
	MaxSubtaskName    = 200  // characters
	MaxSubtaskDetails = 4000 // characters
)

// Subtask is one subtask as the write operations read and return it.
type Subtask struct {
	ID         int64  `json:"id"`
	TaskID     int64  `json:"task_id"`
	Name       string `json:"name"`
	Details    string `json:"details"`
	IsComplete bool   `json:"is_complete"`
	// Version is an opaque digest of the fields above: it changes whenever
	// any of them does (an HTTP strong ETag). UpdateSubtask and
	// DeleteSubtask take it back to refuse a stale write.
	Version string `json:"-"`
}

// NewSubtask is what CreateSubtask writes.
type NewSubtask struct {
	TaskID     int64
	Name       string
	Details    string
	IsComplete bool
}

// SubtaskChange is what UpdateSubtask changes: the fields that are not nil.
type SubtaskChange struct {
	Name       *string
	Details    *string
	IsComplete *bool
}

// Task is a task as the write operations and the task picker see it.
type Task struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	ProjectName string `json:"project"`
	IsComplete  bool   `json:"is_complete"`
}

// Writer is what the web application writes through. Every method works
// on the tenant carried by ctx (ErrNoTenant without one), in one
// transaction under that tenant's scope, the strategy's own isolation
// (row-level security, the tenant's role and schema, its database) as the
// backstop: a row of another tenant is ErrNotFound and is never written.
// Input is checked before any SQL (*ValidationError); a write that fails
// writes nothing.
type Writer interface {
	// GetSubtask returns the tenant's subtask id (ErrNotFound).
	GetSubtask(ctx context.Context, id int64) (Subtask, error)
	// CreateSubtask adds a subtask under one of the tenant's tasks; a task
	// id the tenant does not have, another tenant's included, is a
	// *ValidationError on task_id.
	CreateSubtask(ctx context.Context, in NewSubtask) (Subtask, error)
	// UpdateSubtask changes the tenant's subtask id if it is still at
	// version (ErrStale otherwise, and nothing written) and returns it as
	// it is now. An empty version is a *ValidationError on version.
	UpdateSubtask(ctx context.Context, id int64, version string, change SubtaskChange) (Subtask, error)
	// DeleteSubtask deletes the tenant's subtask id; with a version, only
	// if it is still at that version (ErrStale).
	DeleteSubtask(ctx context.Context, id int64, version string) error
	// CompleteTask marks the tenant's task id complete (ErrNotFound);
	// completing a complete task changes nothing and is no error.
	CompleteTask(ctx context.Context, id int64) (Task, error)
	// ListTasks returns up to limit of the tenant's tasks, by project
	// name, task name and id: what a new subtask may go under.
	ListTasks(ctx context.Context, limit int) ([]Task, error)
}

// CheckNewSubtask validates in before anything is written.
func CheckNewSubtask(in NewSubtask) error {
	fields := map[string]string{}
	if in.TaskID <= 0 {
		fields["task_id"] = "must be the id of one of this account's tasks (a whole number from 1)"
	}
	checkName(fields, in.Name)
	checkDetails(fields, in.Details)
	return validationError(fields)
}

// CheckSubtaskChange validates a change and the version it was made
// against before anything is written.
func CheckSubtaskChange(version string, c SubtaskChange) error {
	fields := map[string]string{}
	if version == "" {
		fields["version"] = "must be the version last read (the ETag, sent as If-Match)"
	}
	checkChange(fields, c)
	return validationError(fields)
}

// CheckChange validates a change alone, for a caller that has yet to
// learn the version it will be made against.
func CheckChange(c SubtaskChange) error {
	fields := map[string]string{}
	checkChange(fields, c)
	return validationError(fields)
}

func checkChange(fields map[string]string, c SubtaskChange) {
	if c.Name != nil {
		checkName(fields, *c.Name)
	}
	if c.Details != nil {
		checkDetails(fields, *c.Details)
	}
}

func validationError(fields map[string]string) error {
	if len(fields) == 0 {
		return nil
	}
	return &ValidationError{Fields: fields}
}

func checkName(fields map[string]string, name string) {
	switch {
	case !utf8.ValidString(name):
		fields["name"] = "must be UTF-8 text"
	case strings.TrimSpace(name) == "":
		fields["name"] = "must not be empty"
	case utf8.RuneCountInString(name) > MaxSubtaskName:
		fields["name"] = fmt.Sprintf("must be at most %d characters", MaxSubtaskName)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		fields["name"] = "must be one line, without control characters"
	}
}

func checkDetails(fields map[string]string, details string) {
	switch {
	case !utf8.ValidString(details):
		fields["details"] = "must be UTF-8 text"
	case utf8.RuneCountInString(details) > MaxSubtaskDetails:
		fields["details"] = fmt.Sprintf("must be at most %d characters", MaxSubtaskDetails)
	case strings.IndexFunc(details, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t' }) >= 0:
		// NUL above all: PostgreSQL's text cannot hold it.
		fields["details"] = "must be text, without control characters other than line breaks and tabs"
	}
}
