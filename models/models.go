package models

import "time"

// Account is a tenant. In singleschema every account lives in one table; in
// multidb each tenant database holds exactly one account row.
//
// Its ID is a TenantID, so the tenant scope keeps a tenant to its own
// account row as it keeps it to its own rows elsewhere.
type Account struct {
	ID   TenantID `gorm:"primaryKey" json:"id"`
	Slug string   `json:"slug"`
	Name string   `json:"name"`
}

// Operator is an account that belongs to no tenant: it signs in on the
// base domain, for the pages that read across tenants, and nowhere else.
// Password is in Django's pbkdf2_sha256 format, as User's.
type Operator struct {
	ID        int64     `json:"id"`
	Email     string    `json:"email"`
	Password  string    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
}

// User belongs to one account; its email is unique within that account only,
// because a global unique index would reveal other tenants' emails.
type User struct {
	ID         int64    `gorm:"primaryKey"`
	AccountID  TenantID `tenancy:"tenant"`
	Email      string
	FirstName  string
	LastName   string
	Password   string
	IsActive   bool
	DateJoined time.Time
}

// Project belongs to one account.
type Project struct {
	ID        int64    `gorm:"primaryKey"`
	AccountID TenantID `tenancy:"tenant"`
	Name      string
	Details   string
	Tasks     []Task `gorm:"foreignKey:ProjectID"`
}

// Task belongs to a project. AccountID is the singleschema denormalisation of
// the project's account: multidb tables do not have the column, and the
// multidb strategy leaves it out of every write.
type Task struct {
	ID         int64    `gorm:"primaryKey"`
	AccountID  TenantID `tenancy:"denormalised"`
	ProjectID  int64
	Project    *Project `gorm:"foreignKey:ProjectID"`
	Name       string
	IsComplete bool
	Details    string
	Subtasks   []Subtask `gorm:"foreignKey:TaskID"`
}

// Subtask belongs to a task; AccountID is denormalised as on Task.
type Subtask struct {
	ID         int64    `gorm:"primaryKey"`
	AccountID  TenantID `tenancy:"denormalised"`
	TaskID     int64
	Task       *Task `gorm:"foreignKey:TaskID"`
	Name       string
	IsComplete bool
	Details    string
}

// SubtaskRow is one line of the subtask list: a subtask with the names of the
// task, project and account it belongs to.
type SubtaskRow struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	IsComplete  bool   `json:"is_complete"`
	Details     string `json:"details"`
	AccountSlug string `json:"account"`
	AccountName string `json:"-"`
	ProjectName string `json:"project"`
	TaskName    string `json:"task"`
}

// SubtaskCount is how many subtasks an account has, kept by triggers on
// subtasks so that a list page does not count them on every request.
type SubtaskCount struct {
	AccountID TenantID `gorm:"primaryKey" tenancy:"tenant"`
	Subtasks  int64
}

// Tenanted returns one of each model whose rows belong to a tenant (those
// with a TenantID field), for code that must know every tenanted table.
func Tenanted() []any {
	return []any{&Account{}, &User{}, &Project{}, &Task{}, &Subtask{}, &SubtaskCount{}}
}
