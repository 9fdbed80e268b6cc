package seed

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

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
	// finishing an interrupted seed gives the rows a full run would have;
	// their ids are those of a full run in multidb, and in singleschema
	// follow on from the ids already used, in account order (see Run).
	SkipExisting bool
	// Reset deletes every existing account and its data first.
	Reset bool
	// Workers is how many accounts are generated at once, and, one
	// transaction per account, loaded at once; 0 picks a default for this
	// machine. The data, ids included, does not depend on it.
	Workers int
	Seed    int64
	// PasswordIterations is the pbkdf2 cost of the sample users' password
	// hash; 0 is Django's default (600,000), what sign-in is built to pay.
	// A load generator that signs in a user of each of thousands of tenants
	// asks for a cheap hash (at 600,000 a sign-in takes some 0.2 s of CPU
	// here), as the figures it measures are of pages, not of sign-in.
	PasswordIterations int
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
	maxTasksPerAccount    = 1_000_000
	maxSubtasksPerAccount = 5_000_000
	maxWorkers            = 64
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
		if most := o.MaxProjects * o.MaxTasks; most > maxTasksPerAccount {
			errs = append(errs, fmt.Errorf("--max-projects %d x --max-tasks %d allows %d tasks in one account: at most %d",
				o.MaxProjects, o.MaxTasks, most, maxTasksPerAccount))
		}
		if most := o.MaxProjects * o.MaxTasks * o.MaxSubtasks; most > maxSubtasksPerAccount {
			errs = append(errs, fmt.Errorf("--max-projects %d x --max-tasks %d x --max-subtasks %d allows %d subtasks in one account: at most %d",
				o.MaxProjects, o.MaxTasks, o.MaxSubtasks, most, maxSubtasksPerAccount))
		}
	}
	if o.Workers < 0 || o.Workers > maxWorkers {
		errs = append(errs, fmt.Errorf("--workers %d: want 0 (automatic) to %d", o.Workers, maxWorkers))
	}
	if o.Reset && o.SkipExisting {
		errs = append(errs, errors.New("--reset and --skip-existing contradict each other: pick one"))
	}
	if o.Reset && o.Rollback {
		errs = append(errs, errors.New("--reset deletes for real, but --rollback promises to commit nothing: pick one"))
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

func (c *Counts) add(a *Account) {
	c.Accounts++
	c.Users += len(a.Users)
	c.Projects += len(a.Projects)
	c.Tasks += len(a.Tasks)
	c.Subtasks += len(a.Subtasks)
}

// Rows is every row counted, accounts included.
func (c Counts) Rows() int {
	return c.Accounts + c.Users + c.Projects + c.Tasks + c.Subtasks
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

// Progress is where a run stands, given to a Reporter after every account.
type Progress struct {
	Done, Total int // accounts written (or, with Rollback, rolled back) of those to write
	Rows        int // rows in the accounts done
	Elapsed     time.Duration
}

// Reporter shows progress; Report is never called concurrently.
type Reporter interface {
	Report(Progress)
}

// Seeder writes generated accounts through a strategy.Admin.
type Seeder struct {
	admin       strategy.Admin
	tenantCount int
	messages    io.Writer
	reporter    Reporter
}

// NewSeeder returns a Seeder. tenantCount is MULTIDB_COUNT (ignored by
// singleschema); messages receives what the run decides (resets, accounts
// left alone) and reporter its progress; either may be nil.
func NewSeeder(admin strategy.Admin, tenantCount int, messages io.Writer, reporter Reporter) (*Seeder, error) {
	if admin == nil {
		return nil, errors.New("seed: admin must not be nil")
	}
	if messages == nil {
		messages = io.Discard
	}
	return &Seeder{admin: admin, tenantCount: tenantCount, messages: messages, reporter: reporter}, nil
}

// Result says what a run did.
type Result struct {
	Counts  Counts
	Skipped int // existing accounts left alone (SkipExisting)
	Removed int // accounts deleted first (Reset)
	// Checksum identifies the data the options define, every account
	// included (skipped ones too); empty when the run did not finish.
	Checksum string
	Elapsed  time.Duration
}

// Run validates o, refuses to touch existing accounts (or, with
// SkipExisting, leaves them out; with Reset, deletes them first), then
// generates and bulk loads accounts on several workers, each account in its
// own transaction: an account is written whole or not at all, and on an
// error or cancellation Result.Counts says how many were.
//
// Ids depend on the options alone, not on the workers or on timing: the
// accounts get their ids in account order (see generateInOrder). In a
// freshly set-up database account tenant-i has id i+1 in every strategy,
// and every table's rows are numbered from 1, account after account
// (singleschema) or within the tenant's own database (multidb).
// Singleschema ids follow on from the ids its sequences have handed out:
// Reset does not rewind them, a run into non-empty tables that is rolled
// back or fails part-way has used some up, and so have the policy probes
// of `tenancy check` and of the server's start-up check, if they ran
// first.
func (s *Seeder) Run(ctx context.Context, o Options) (Result, error) {
	start := time.Now()
	if err := o.Validate(s.admin.Name(), s.tenantCount); err != nil {
		return Result{}, fmt.Errorf("invalid options:\n%w", err)
	}
	var res Result
	if o.Reset {
		n, err := s.admin.Reset(ctx)
		if err != nil {
			return Result{}, err
		}
		res.Removed = n
		fmt.Fprintf(s.messages, "reset: removed %s and everything they owned\n", plural(n, "existing account"))
	}
	skip, err := s.existing(ctx, o)
	if err != nil {
		return res, err
	}
	res.Skipped = len(skip)
	hash, err := hashPassword(SamplePassword, o.Seed, o.PasswordIterations)
	if err != nil {
		return res, err
	}
	total := o.Accounts - len(skip)
	if total == 0 {
		fmt.Fprintln(s.messages, "every account already exists; nothing to write")
	}

	run := &seedRun{seeder: s, opts: o, hash: hash, skip: skip, start: start, total: total,
		digests: make([]Digest, o.Accounts)}
	// Into empty tables, everything goes in one transaction with the
	// indexes built afterwards, several times faster; otherwise (some
	// accounts exist, or multidb) each account is its own transaction.
	bulk := false
	if len(skip) == 0 {
		if bulk, err = s.admin.CanBulkLoad(ctx); err != nil {
			return res, err
		}
	}
	if bulk {
		err = run.bulk(ctx)
		if errors.Is(err, strategy.ErrNotEmpty) { // rows arrived since CanBulkLoad
			err = run.do(ctx)
		}
	} else {
		err = run.do(ctx)
	}
	res.Counts = run.counts
	// Flushed even after an interruption: the accounts the summary calls
	// written must survive a crash that follows it.
	if res.Counts.Accounts > 0 && !o.Rollback {
		flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		ferr := s.admin.Flush(flushCtx)
		cancel()
		if err == nil {
			err = ferr
		}
	}
	res.Elapsed = time.Since(start)
	if err != nil {
		return res, err
	}
	res.Checksum = Checksum(run.digests)
	res.Elapsed = time.Since(start)
	return res, nil
}

// existing returns the accounts of the run that already exist, or an error
// naming them when the options do not allow that.
func (s *Seeder) existing(ctx context.Context, o Options) (map[int]bool, error) {
	slugs := make([]string, o.Accounts)
	for i := range slugs {
		slugs[i] = strategy.Slug(i)
	}
	existing, err := s.admin.ExistingSlugs(ctx, slugs)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(existing, func(a, b string) int { return cmp.Compare(slugIndex(a), slugIndex(b)) })
	if len(existing) > 0 && !o.SkipExisting {
		return nil, fmt.Errorf("%w: %s; nothing was written (--reset deletes every existing account first, --skip-existing seeds only the missing ones)", ErrAccountsExist, listSlugs(existing))
	}
	skip := make(map[int]bool, len(existing))
	for _, slug := range existing {
		skip[slugIndex(slug)] = true
	}
	if len(existing) > 0 {
		fmt.Fprintf(s.messages, "%d of the %d accounts already exist and are left alone (%s)\n", len(existing), o.Accounts, listSlugs(existing))
	}
	return skip, nil
}

// slugIndex is the account index in a slug that ExistingSlugs returned,
// and so one that this run asked about.
func slugIndex(slug string) int {
	i, _ := strategy.ParseSlug(slug)
	return i
}

// seedRun is one Run's shared state between its workers.
type seedRun struct {
	seeder *Seeder
	opts   Options
	hash   string
	skip   map[int]bool
	start  time.Time
	total  int

	digests []Digest // by account index; each written by one worker

	mu     sync.Mutex
	counts Counts
	failed []string // accounts whose load failed or was cancelled
	err    error    // the first failure
}

// do writes each account in its own transaction: generated on the
// workers, given its ids in account order, and loaded on as many workers.
func (r *seedRun) do(parent context.Context) error {
	// The first failure stops the other workers; each rolls back the
	// account it is on.
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	workers := r.opts.EffectiveWorkers()
	inOrder := make(chan *Account, workers)
	go r.generateInOrder(ctx, inOrder)
	// One goroutine gives the ids, account after account (a round trip
	// each in singleschema, nothing to ask in multidb), while the loads
	// before them run.
	withIDs := make(chan *Account, workers)
	go func() {
		defer close(withIDs)
		for a := range inOrder {
			if ctx.Err() != nil {
				continue // handed on as the cancel came; read on to the end
			}
			if err := r.seeder.admin.AssignIDs(ctx, a); err != nil {
				r.fail(ctx, cancel, a, err)
				continue
			}
			select {
			case withIDs <- a:
			case <-ctx.Done():
			}
		}
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range withIDs {
				if ctx.Err() == nil { // handed on as the cancel came
					r.load(ctx, cancel, a)
				}
			}
		}()
	}
	wg.Wait()

	done := r.counts.Accounts
	switch {
	case parent.Err() != nil:
		return fmt.Errorf("interrupted: %d of %d accounts were written in full%s; run the same command with --skip-existing to finish: %w",
			done, r.total, r.rolledBack(), parent.Err())
	case r.err != nil:
		return fmt.Errorf("%w (%d of %d accounts were written in full%s; fix the cause, then run the same command with --skip-existing to finish)",
			r.err, done, r.total, r.rolledBack())
	}
	return nil
}

// bulk generates accounts on the workers and hands them to one BulkLoad:
// all of them are written, or none. BulkLoad gives ids in the order the
// accounts arrive, so they are sent in account order.
func (r *seedRun) bulk(parent context.Context) error {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	accounts := make(chan *Account, 2*r.opts.EffectiveWorkers())
	generated := make(chan struct{})
	go func() {
		defer close(generated)
		r.generateInOrder(ctx, accounts)
	}()

	var loaded Counts
	err := r.seeder.admin.BulkLoad(ctx, accounts, !r.opts.Rollback, func(d *Account) {
		loaded.add(d)
		if r.seeder.reporter != nil {
			r.seeder.reporter.Report(Progress{Done: loaded.Accounts, Total: r.total, Rows: loaded.Rows(), Elapsed: time.Since(r.start)})
		}
	})
	cancel(nil) // stops the workers if BulkLoad ended early
	<-generated
	switch {
	case err == nil:
		r.counts = loaded
		return nil
	case errors.Is(err, strategy.ErrNotEmpty):
		return err
	case parent.Err() != nil:
		return fmt.Errorf("interrupted: nothing was written (a seed into empty tables writes every account in one transaction, now rolled back); run the same command again: %w", parent.Err())
	}
	return fmt.Errorf("%w (a seed into empty tables writes every account in one transaction, so nothing was written; fix the cause and run the same command again)", err)
}

// load writes a, whose ids are given, and counts it.
func (r *seedRun) load(ctx context.Context, cancel context.CancelCauseFunc, a *Account) {
	if err := r.seeder.admin.LoadTenant(ctx, a, !r.opts.Rollback); err != nil {
		r.fail(ctx, cancel, a, err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts.add(a)
	if r.seeder.reporter != nil {
		r.seeder.reporter.Report(Progress{Done: r.counts.Accounts, Total: r.total, Rows: r.counts.Rows(), Elapsed: time.Since(r.start)})
	}
}

// fail records that a was not written, and stops the run at the first
// failure that is not the run's own cancellation.
func (r *seedRun) fail(ctx context.Context, cancel context.CancelCauseFunc, a *Account, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = append(r.failed, a.Account.Slug)
	if r.err == nil && ctx.Err() == nil {
		r.err = err // names the tenant already
		cancel(r.err)
	}
}

func (r *seedRun) rolledBack() string {
	if len(r.failed) == 0 {
		return ""
	}
	return fmt.Sprintf("; the %d in progress were rolled back (%s)", len(r.failed), listSlugs(r.failed))
}

// EffectiveWorkers is o.Workers, or by default one more than the cores: a
// worker waiting (on PostgreSQL, or for the accounts before its own to be
// sent on) leaves its core to generating the next account.
func (o Options) EffectiveWorkers() int {
	if o.Workers > 0 {
		return o.Workers
	}
	return runtime.NumCPU() + 1
}

func listSlugs(slugs []string) string {
	const shown = 5
	if len(slugs) <= shown {
		return strings.Join(slugs, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(slugs[:shown], ", "), len(slugs)-shown)
}
