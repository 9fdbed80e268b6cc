package singleschema_test

import (
	"errors"
	"fmt"
	"testing"

	"gorm.io/gorm"

	"tenancy/internal/pgtest"
	"tenancy/models"
	"tenancy/strategy"
	"tenancy/strategy/internal/pg"
	"tenancy/strategy/singleschema"
	"tenancy/strategy/strategytest"
)

// splitFault makes PostgreSQL fail a statement with Citus's error for a
// statement planned on a shard that a split or a move has replaced
// ("could not find valid entry for shard", XX000). tt_split_fault, from a
// trigger, fails the first `failures` times it is called, counting in a
// sequence (which no rollback undoes). tt_split_fault_once, from a policy,
// fails the first time only, also in a read-only transaction, where no
// sequence may advance: it takes a session-level advisory lock, which a
// rollback keeps, and fails while nobody held it. SECURITY DEFINER: the
// app role calls them.
const splitFault = `
CREATE SEQUENCE tt_split_calls;
CREATE FUNCTION tt_split_fault_once(key int) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_locks l JOIN pg_database d ON d.oid = l.database
                   WHERE d.datname = current_database() AND l.locktype = 'advisory' AND l.objid = key AND l.granted) THEN
        PERFORM pg_advisory_lock(key);
        RAISE EXCEPTION 'could not find valid entry for shard 102041' USING ERRCODE = 'XX000';
    END IF;
    RETURN true;
END $$;
CREATE FUNCTION tt_split_fault(failures bigint) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    IF nextval('tt_split_calls') <= failures THEN
        RAISE EXCEPTION 'could not find valid entry for shard 102041' USING ERRCODE = 'XX000';
    END IF;
    RETURN true;
END $$;
CREATE FUNCTION tt_split_fault_trigger() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM tt_split_fault(TG_ARGV[0]::bigint);
    RETURN NEW;
END $$`

// TestWritesAndReadsAgainAfterSplit: a statement that Citus fails because
// a shard split or move replaced the shard it was planned on, before the
// transaction's COMMIT was sent, makes the server run the whole
// conversation once more (the transaction rolled back: nothing of it
// happened), for the writes' pipelines and the reads alike; never a
// second time, and never once the COMMIT was sent, when the write may
// have committed. The error is injected on plain PostgreSQL at each place
// it can come from: the locking read a write begins with, the write
// itself, the COMMIT (a deferred trigger), the page read and a read in a
// gorm transaction. Without the retry the first cases fail with the error
// (503); a retry after the COMMIT would make the write twice.
func TestWritesAndReadsAgainAfterSplit(t *testing.T) {
	t.Parallel()
	h := singleschema.Harness()
	opts, admin, s := strategytest.Deploy(t, h)
	acct := strategytest.AddTenantWithTasks(t, admin, s, "tenant-0", 1, 2)
	ctx := strategytest.TenantCtx(acct)
	db := pgtest.Admin(t, opts.Database)
	strategytest.MustExec(t, db, splitFault)
	appRole := pg.QuoteIdent(opts.AppUser)
	strategytest.MustExec(t, db, "GRANT EXECUTE ON FUNCTION tt_split_fault(bigint), tt_split_fault_once(int) TO "+appRole)
	tasks, err := s.ListTasks(ctx, 10)
	if err != nil || len(tasks) == 0 {
		t.Fatalf("ListTasks: %v, %v", tasks, err)
	}
	page, err := s.ListSubtasks(ctx, 1, 10)
	if err != nil || len(page.Rows) == 0 {
		t.Fatalf("ListSubtasks: %v, %v", page, err)
	}
	first := page.Rows[0]
	subtask, err := s.GetSubtask(ctx, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	// fault is how the error is made, how many tries it saw, and how it
	// is undone.
	type fault struct{ inject, tries, undo string }
	// withPolicy fails the app role's first read of table: the tries it
	// saw fail are the lock's, one at most.
	locks := 0
	withPolicy := func(table string) fault {
		locks++
		return fault{
			fmt.Sprintf("CREATE POLICY tt_split ON %s AS RESTRICTIVE FOR SELECT TO %s USING (tt_split_fault_once(%d))", table, appRole, locks),
			fmt.Sprintf(`SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %d
				AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`, locks),
			"DROP POLICY tt_split ON " + table,
		}
	}
	// withTrigger fails inserts into subtasks with the trigger create:
	// the tries are the sequence's.
	withTrigger := func(create string) fault {
		return fault{create, "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM tt_split_calls", "DROP TRIGGER tt_split ON subtasks"}
	}
	named := 0
	newName := func() string { named++; return fmt.Sprintf("after the split %d", named) }
	create := func() (string, error) {
		n := newName()
		_, err := s.CreateSubtask(ctx, strategy.NewSubtask{TaskID: tasks[0].ID, Name: n})
		return n, err
	}
	tests := []struct {
		name string
		fault
		do func() (name string, err error) // name: of a subtask the write makes, "" for none
		// fewest and most: the tries the fault saw
		fewest, most int64
		fails        bool
	}{
		{"a write's locking read", withPolicy("subtasks"),
			func() (string, error) {
				n := newName()
				_, err := s.UpdateSubtask(ctx, subtask.ID, subtask.Version, strategy.SubtaskChange{Name: &n})
				if err == nil {
					subtask, err = s.GetSubtask(ctx, subtask.ID)
				}
				return "", err
			}, 1, 1, false},
		{"the insert, sent with the COMMIT",
			withTrigger("CREATE TRIGGER tt_split BEFORE INSERT ON subtasks FOR EACH ROW EXECUTE FUNCTION tt_split_fault_trigger(1)"),
			create, 2, 2, false},
		{"the read of a write that only reads", withPolicy("subtasks"),
			func() (string, error) { _, err := s.GetSubtask(ctx, subtask.ID); return "", err }, 1, 1, false},
		{"the page read", withPolicy("subtasks"),
			func() (string, error) {
				p, err := s.ListSubtasks(ctx, 1, 10)
				if err == nil && len(p.Rows) == 0 {
					err = errors.New("read no rows")
				}
				return "", err
			}, 1, 1, false},
		{"a read in a read-only transaction", withPolicy("tasks"),
			func() (string, error) {
				got, err := s.ListTasks(ctx, 10)
				if err == nil && len(got) != len(tasks) {
					err = fmt.Errorf("read %d tasks, want %d", len(got), len(tasks))
				}
				return "", err
			}, 1, 1, false},
		{"the split again on the second try",
			withTrigger("CREATE TRIGGER tt_split BEFORE INSERT ON subtasks FOR EACH ROW EXECUTE FUNCTION tt_split_fault_trigger(2)"),
			create, 2, 2, true},
		{"the COMMIT",
			withTrigger("CREATE CONSTRAINT TRIGGER tt_split AFTER INSERT ON subtasks DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION tt_split_fault_trigger(1000)"),
			create, 1, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			strategytest.MustExec(t, db, "ALTER SEQUENCE tt_split_calls RESTART", tt.inject)
			name, err := tt.do()
			strategytest.MustExec(t, db, tt.undo)
			calls := strategytest.Int64s(t, db, tt.tries)[0]
			switch {
			case tt.fails && !pg.ShardReplaced(err):
				t.Errorf("err = %v, want Citus's shard error", err)
			case tt.fails && !errors.Is(err, strategy.ErrUnavailable):
				t.Errorf("err = %v, want it unavailable (503, try again)", err)
			case !tt.fails && err != nil:
				t.Errorf("err = %v, want it tried again and done", err)
			}
			if calls < tt.fewest || calls > tt.most {
				t.Errorf("the statement was tried %d times, want %d to %d", calls, tt.fewest, tt.most)
			}
			if name == "" {
				return
			}
			want := int64(1)
			if tt.fails {
				want = 0
			}
			if got := countNamed(t, s, acct, name); got != want {
				t.Errorf("subtasks named %q: %d, want %d", name, got, want)
			}
		})
	}
}

// countNamed is how many of tenant a's subtasks are named name.
func countNamed(t *testing.T, s strategy.Strategy, a models.Account, name string) int64 {
	t.Helper()
	var n int64
	err := s.Tx(strategytest.TenantCtx(a), func(tx *gorm.DB) error {
		return tx.Model(&models.Subtask{}).Where("name = ?", name).Count(&n).Error
	})
	if err != nil {
		t.Fatalf("count the subtasks named %q: %v", name, err)
	}
	return n
}
