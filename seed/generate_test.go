package seed

import (
	"reflect"
	"strings"
	"testing"
)

func TestGenerateIsDeterministic(t *testing.T) {
	o := DefaultOptions()
	for i := range 5 {
		a, b := Generate(o, i, "hash"), Generate(o, i, "hash")
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("Generate(defaults, %d) differs between two calls", i)
		}
	}
	if reflect.DeepEqual(Generate(o, 0, "h").Subtasks, Generate(o, 1, "h").Subtasks) {
		t.Error("accounts 0 and 1 generated the same subtasks")
	}
	other := o
	other.Seed++
	if Generate(o, 0, "h").Account.Name == Generate(other, 0, "h").Account.Name &&
		reflect.DeepEqual(Generate(o, 0, "h").Projects, Generate(other, 0, "h").Projects) {
		t.Error("another seed generated the same account")
	}
}

func TestGenerateRespectsRanges(t *testing.T) {
	o := Options{Seed: 7, MinUsers: 2, MaxUsers: 3, MinProjects: 4, MaxProjects: 6, MinTasks: 2, MaxTasks: 3, MinSubtasks: 1, MaxSubtasks: 2}
	for i := range 50 {
		a := Generate(o, i, "h")
		if n := len(a.Users); n < 2 || n > 3 {
			t.Errorf("account %d: %d users, want 2..3", i, n)
		}
		p := len(a.Projects)
		if p < 4 || p > 6 {
			t.Errorf("account %d: %d projects, want 4..6", i, p)
		}
		if len(a.Tasks)%p != 0 || len(a.Tasks)/p < 2 || len(a.Tasks)/p > 3 {
			t.Errorf("account %d: %d tasks for %d projects, want a multiplier of 2..3", i, len(a.Tasks), p)
		}
		if m := len(a.Subtasks) / len(a.Tasks); len(a.Subtasks)%len(a.Tasks) != 0 || m < 1 || m > 2 {
			t.Errorf("account %d: %d subtasks for %d tasks, want a multiplier of 1..2", i, len(a.Subtasks), len(a.Tasks))
		}
		for _, task := range a.Tasks {
			if task.Project < 0 || task.Project >= p {
				t.Fatalf("account %d: task refers to project %d of %d", i, task.Project, p)
			}
		}
		for _, s := range a.Subtasks {
			if s.Task < 0 || s.Task >= len(a.Tasks) {
				t.Fatalf("account %d: subtask refers to task %d of %d", i, s.Task, len(a.Tasks))
			}
		}
		emails := map[string]bool{}
		for _, u := range a.Users {
			if emails[u.Email] || !strings.Contains(u.Email, "@") {
				t.Errorf("account %d: bad or repeated email %q", i, u.Email)
			}
			emails[u.Email] = true
		}
		if want := "tenant-"; !strings.HasPrefix(a.Account.Slug, want) {
			t.Errorf("account %d: slug %q", i, a.Account.Slug)
		}
	}
	none := Generate(Options{Seed: 1, MaxProjects: 0, MaxTasks: 5, MaxSubtasks: 5}, 0, "h")
	if len(none.Projects)+len(none.Tasks)+len(none.Subtasks) != 0 {
		t.Errorf("no projects: got %d projects, %d tasks, %d subtasks", len(none.Projects), len(none.Tasks), len(none.Subtasks))
	}
}

func TestValidate(t *testing.T) {
	ok := DefaultOptions()
	tests := []struct {
		name     string
		change   func(*Options)
		strategy string
		want     string // "" for valid
	}{
		{"defaults", func(*Options) {}, "singleschema", ""},
		{"zero accounts", func(o *Options) { o.Accounts = 0 }, "singleschema", "--accounts"},
		{"negative accounts", func(o *Options) { o.Accounts = -1 }, "singleschema", "--accounts"},
		{"more accounts than tenant databases", func(o *Options) { o.Accounts = 6 }, "multidb", "MULTIDB_COUNT"},
		{"as many accounts as tenant databases", func(o *Options) { o.Accounts = 5 }, "multidb", ""},
		{"min greater than max", func(o *Options) { o.MinTasks, o.MaxTasks = 5, 2 }, "singleschema", "--min-tasks 5 is greater than --max-tasks 2"},
		{"negative min", func(o *Options) { o.MinUsers = -1 }, "singleschema", "--min-users"},
		{"negative max", func(o *Options) { o.MinSubtasks, o.MaxSubtasks = 0, -2 }, "singleschema", "--max-subtasks"},
		{"seed zero", func(o *Options) { o.Seed = 0 }, "singleschema", "seed"},
		{"huge users", func(o *Options) { o.MaxUsers = 1 << 62 }, "singleschema", "--max-users"},
		{"huge multiplier", func(o *Options) { o.MinTasks, o.MaxTasks = 1<<62, 1<<62 }, "singleschema", "--max-tasks"},
		{"huge accounts", func(o *Options) { o.Accounts = 1 << 40 }, "singleschema", "--accounts"},
		{"huge account", func(o *Options) { o.MaxProjects, o.MaxTasks, o.MaxSubtasks = 10000, 1000, 1000 }, "singleschema", "subtasks in one account"},
		{"huge account without subtasks", func(o *Options) {
			o.MaxProjects, o.MaxTasks, o.MinSubtasks, o.MaxSubtasks = 10000, 1000, 0, 0
		}, "singleschema", "tasks in one account"},
		{"reset and rollback", func(o *Options) { o.Reset, o.Rollback = true, true }, "singleschema", "--rollback promises"},
		{"reset and skip", func(o *Options) { o.Reset, o.SkipExisting = true, true }, "singleschema", "contradict"},
		{"too many workers", func(o *Options) { o.Workers = 1000 }, "singleschema", "--workers 1000"},
	}
	for _, tt := range tests {
		o := ok
		tt.change(&o)
		err := o.Validate(tt.strategy, 5)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: Validate = %v, want nil", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: Validate = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
}

func TestHashPassword(t *testing.T) {
	a, err := HashPassword(SamplePassword, DefaultSeed)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := HashPassword(SamplePassword, DefaultSeed)
	c, _ := HashPassword("other", DefaultSeed)
	if a != b || a == c || !strings.HasPrefix(a, "pbkdf2_sha256$600000$") || strings.Contains(a, SamplePassword) {
		t.Errorf("HashPassword = %q, %q, %q: want equal for equal input, a pbkdf2_sha256 hash, no plain text", a, b, c)
	}
}

// TestSignInEmail: the email SignInEmail gives is that of the first active
// user Generate makes for the account, under any options, and there is
// none exactly when every user is inactive.
func TestSignInEmail(t *testing.T) {
	for _, o := range []Options{DefaultOptions(), {Seed: 7, MinUsers: 3, MaxUsers: 3, MinProjects: 1, MaxProjects: 1}, {Seed: 9, MinUsers: 1, MaxUsers: 1}} {
		inactive := 0
		for i := range 200 {
			want, wantOK := "", false
			for _, u := range Generate(o, i, "h").Users {
				if u.IsActive {
					want, wantOK = u.Email, true
					break
				}
			}
			got, ok := SignInEmail(o, i)
			if got != want || ok != wantOK {
				t.Errorf("SignInEmail(%+v, %d) = %q, %v; want %q, %v", o, i, got, ok, want, wantOK)
			}
			if !ok {
				inactive++
			}
		}
		if o.MinUsers == 1 && o.MaxUsers == 1 && inactive == 0 {
			t.Errorf("options %+v: every one of 200 single-user accounts has an active user; want about one in ten without", o)
		}
	}
}

func TestHashPasswordIterations(t *testing.T) {
	for _, tc := range []struct {
		iterations int
		prefix     string
	}{{0, "pbkdf2_sha256$600000$"}, {1000, "pbkdf2_sha256$1000$"}} {
		h, err := hashPassword(SamplePassword, DefaultSeed, tc.iterations)
		if err != nil || !strings.HasPrefix(h, tc.prefix) {
			t.Errorf("hashPassword(%d iterations) = %q, %v; want a hash starting %q", tc.iterations, h, err, tc.prefix)
		}
	}
}
