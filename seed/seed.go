package seed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"gorm.io/gorm"

	"tenancy/models"
	"tenancy/strategy"
)

// Options are createtestdata's options.
type Options struct {
	Accounts                 int
	MinUsers, MaxUsers       int
	MinProjects, MaxProjects int
	// MinTasks..MaxTasks is the range of the per-account tasks-per-project
	// multiplier; likewise subtasks per task.
	MinTasks, MaxTasks       int
	MinSubtasks, MaxSubtasks int
	// Rollback does all the work and commits none of it.
	Rollback bool
	// SkipExisting seeds only the accounts that do not exist yet, instead
	// of refusing to run. Each account's data depends only on its index, so
	// finishing an interrupted seed gives the rows a full run would have.
	SkipExisting bool
	Seed         int64
}

// DefaultOptions are the talk's defaults.
func DefaultOptions() Options {
	return Options{
		Accounts: 1,
		MinUsers: 1, MaxUsers: 5,
		MinProjects: 1, MaxProjects: 30,
		MinTasks: 1, MaxTasks: 10,
		MinSubtasks: 1, MaxSubtasks: 10,
		Seed: DefaultSeed,
	}
}

// Limits on the options, so that no option can exhaust memory or overflow.
const (
	maxAccounts           = 1_000_000
	maxPerLevel           = 10_000 // users or projects per account
	maxMultiplier         = 1_000  // tasks per project, subtasks per task
	maxSubtasksPerAccount = 5_000_000
)

// Validate checks the options before anything is written. tenantCount is
// MULTIDB_COUNT for multidb and 0 otherwise.
func (o Options) Validate(strategyName string, tenantCount int) error {
	var errs []error
	if o.Accounts < 1 {
		errs = append(errs, fmt.Errorf("--accounts %d: want at least 1", o.Accounts))
	}
	if strategyName == strategy.MultiDB && o.Accounts > tenantCount {
		errs = append(errs, fmt.Errorf("--accounts %d: multidb has %d tenant databases (MULTIDB_COUNT); raise MULTIDB_COUNT and run setup, or seed fewer", o.Accounts, tenantCount))
	}
	if o.Accounts > maxAccounts {
		errs = append(errs, fmt.Errorf("--accounts %d: at most %d", o.Accounts, maxAccounts))
	}
	for _, r := range []struct {
		name     string
		min, max int
		limit    int
	}{
		{"users", o.MinUsers, o.MaxUsers, maxPerLevel},
		{"projects", o.MinProjects, o.MaxProjects, maxPerLevel},
		{"tasks", o.MinTasks, o.MaxTasks, maxMultiplier},
		{"subtasks", o.MinSubtasks, o.MaxSubtasks, maxMultiplier},
	} {
		switch {
		case r.min < 0 || r.max < 0:
			errs = append(errs, fmt.Errorf("--min-%s %d, --max-%s %d: want numbers of at least 0", r.name, r.min, r.name, r.max))
		case r.min > r.max:
			errs = append(errs, fmt.Errorf("--min-%s %d is greater than --max-%s %d", r.name, r.min, r.name, r.max))
		case r.max > r.limit:
			errs = append(errs, fmt.Errorf("--max-%s %d: at most %d", r.name, r.max, r.limit))
		}
	}
	// Each account is generated and written in one piece, so its size is
	// bounded by memory, not only by patience.
	if o.MaxProjects <= maxPerLevel && o.MaxTasks <= maxMultiplier && o.MaxSubtasks <= maxMultiplier {
		if most := o.MaxProjects * o.MaxTasks * o.MaxSubtasks; most > maxSubtasksPerAccount {
			errs = append(errs, fmt.Errorf("--max-projects %d x --max-tasks %d x --max-subtasks %d allows %d subtasks in one account: at most %d",
				o.MaxProjects, o.MaxTasks, o.MaxSubtasks, most, maxSubtasksPerAccount))
		}
	}
	if o.Seed == 0 {
		errs = append(errs, errors.New("seed 0 would make gofakeit pick a random seed; use a fixed non-zero seed"))
	}
	return errors.Join(errs...)
}

// Counts are rows written (or, with Rollback, rows that would have been).
type Counts struct {
	Accounts, Users, Projects, Tasks, Subtasks int
}

func (c *Counts) add(a Account) {
	c.Accounts++
	c.Users += len(a.Users)
	c.Projects += len(a.Projects)
	c.Tasks += len(a.Tasks)
	c.Subtasks += len(a.Subtasks)
}

func (c Counts) String() string {
	return fmt.Sprintf("%s, %s, %s, %s, %s", plural(c.Accounts, "account"), plural(c.Users, "user"),
		plural(c.Projects, "project"), plural(c.Tasks, "task"), plural(c.Subtasks, "subtask"))
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// ErrAccountsExist: some of the accounts to seed are already there.
var ErrAccountsExist = errors.New("accounts already exist")

// Seeder writes generated accounts through a strategy.Admin.
type Seeder struct {
	admin       strategy.Admin
	tenantCount int
	progress    io.Writer
}

// NewSeeder returns a Seeder. tenantCount is MULTIDB_COUNT (ignored by
// singleschema); progress receives one line per account and may be nil.
func NewSeeder(admin strategy.Admin, tenantCount int, progress io.Writer) (*Seeder, error) {
	if admin == nil {
		return nil, errors.New("seed: admin must not be nil")
	}
	if progress == nil {
		progress = io.Discard
	}
	return &Seeder{admin: admin, tenantCount: tenantCount, progress: progress}, nil
}

// Result says what a run did.
type Result struct {
	Counts  Counts
	Skipped int // existing accounts left alone (SkipExisting)
	Elapsed time.Duration
}

// Run validates o, refuses to touch existing accounts (or, with
// SkipExisting, leaves them out), then writes each account in its own
// transaction: an account is written whole or not at
// all, and on an error or cancellation Result.Counts says how many were.
func (s *Seeder) Run(ctx context.Context, o Options) (Result, error) {
	start := time.Now()
	if err := o.Validate(s.admin.Name(), s.tenantCount); err != nil {
		return Result{}, fmt.Errorf("invalid options:\n%w", err)
	}
	slugs := make([]string, o.Accounts)
	for i := range slugs {
		slugs[i] = strategy.Slug(i)
	}
	existing, err := s.admin.ExistingSlugs(ctx, slugs)
	if err != nil {
		return Result{}, err
	}
	if len(existing) > 0 && !o.SkipExisting {
		return Result{}, fmt.Errorf("%w: %s; nothing was written (--skip-existing seeds only the missing accounts; or start from fresh databases: drop them and run `tenancy setup`)", ErrAccountsExist, listSlugs(existing))
	}
	skip := make(map[string]bool, len(existing))
	for _, slug := range existing {
		skip[slug] = true
	}
	if len(existing) > 0 {
		fmt.Fprintf(s.progress, "%d of the %d accounts already exist and are left alone (%s)\n", len(existing), o.Accounts, listSlugs(existing))
	}
	if len(existing) == o.Accounts {
		return Result{Skipped: len(existing), Elapsed: time.Since(start)}, nil
	}
	hash, err := HashPassword(SamplePassword, o.Seed)
	if err != nil {
		return Result{}, err
	}

	res := Result{Skipped: len(existing)}
	for i := range o.Accounts {
		if skip[strategy.Slug(i)] {
			continue
		}
		if ctx.Err() != nil {
			res.Elapsed = time.Since(start)
			return res, fmt.Errorf("interrupted: %d accounts were written in full; run the same command with --skip-existing to finish: %w",
				res.Counts.Accounts, ctx.Err())
		}
		a := Generate(o, i, hash)
		if err := s.admin.CreateTenant(ctx, a.Account, !o.Rollback, writeRows(ctx, a)); err != nil {
			res.Elapsed = time.Since(start)
			if ctx.Err() != nil {
				return res, fmt.Errorf("interrupted: %d accounts were written in full and %s was rolled back; run the same command with --skip-existing to finish: %w",
					res.Counts.Accounts, a.Account.Slug, ctx.Err())
			}
			return res, fmt.Errorf("seed %s (after %d of %d accounts were written; %s was rolled back): %w", a.Account.Slug, res.Counts.Accounts, o.Accounts, a.Account.Slug, err)
		}
		res.Counts.add(a)
		fmt.Fprintf(s.progress, "[%d/%d] %s %q: %d users, %d projects, %d tasks, %d subtasks\n",
			i+1, o.Accounts, a.Account.Slug, a.Account.Name, len(a.Users), len(a.Projects), len(a.Tasks), len(a.Subtasks))
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

func listSlugs(slugs []string) string {
	const shown = 5
	if len(slugs) <= shown {
		return strings.Join(slugs, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(slugs[:shown], ", "), len(slugs)-shown)
}

// batchSize keeps each INSERT well under PostgreSQL's 65535 bind parameters.
const batchSize = 1000

// writeRows inserts an account's rows with gorm, parents first, wiring each
// child to the id its parent got. tx carries the tenant, so the tenant
// scope fills in account_id where the strategy has the column. Between
// tables it stops early once ctx is cancelled (tx's own context is not).
func writeRows(ctx context.Context, a Account) func(tx *gorm.DB) error {
	return func(tx *gorm.DB) error {
		if len(a.Users) > 0 {
			if err := tx.CreateInBatches(a.Users, batchSize).Error; err != nil {
				return fmt.Errorf("create users: %w", err)
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if len(a.Projects) > 0 {
			if err := tx.CreateInBatches(a.Projects, batchSize).Error; err != nil {
				return fmt.Errorf("create projects: %w", err)
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		tasks := make([]models.Task, len(a.Tasks))
		for i, t := range a.Tasks {
			tasks[i] = t.Task
			tasks[i].ProjectID = a.Projects[t.Project].ID
		}
		if len(tasks) > 0 {
			if err := tx.CreateInBatches(tasks, batchSize).Error; err != nil {
				return fmt.Errorf("create tasks: %w", err)
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		subtasks := make([]models.Subtask, len(a.Subtasks))
		for i, s := range a.Subtasks {
			subtasks[i] = s.Subtask
			subtasks[i].TaskID = tasks[s.Task].ID
		}
		if len(subtasks) > 0 {
			if err := tx.CreateInBatches(subtasks, batchSize).Error; err != nil {
				return fmt.Errorf("create subtasks: %w", err)
			}
		}
		return nil
	}
}
