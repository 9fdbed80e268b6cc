// Package seed generates deterministic sample data, the Go counterpart of the
// talk's createtestdata command, and writes it through a strategy.Admin.
//
// The data depends only on the options: each account has its own random
// stream derived from a fixed seed and the account's index, so the same
// options give the same rows in every strategy, in any order of writing.
package seed

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/brianvoe/gofakeit/v6"

	"tenancy/models"
	"tenancy/strategy"
)

// DefaultSeed is the fixed seed of the sample data. gofakeit.New(0) would
// pick a random one.
const DefaultSeed int64 = 20230818

// SamplePassword is every sample user's password.
const SamplePassword = "tenancy-sample"

// baseTime anchors every generated timestamp; time.Now would make runs differ.
var baseTime = time.Date(2023, time.August, 18, 9, 0, 0, 0, time.UTC)

// Account is one generated account with everything it owns; children refer
// to their parent by index, since ids are given only when the account's
// turn to be written comes (Admin.AssignIDs, or BulkLoad).
type Account = strategy.TenantData

// Task is a generated task and the index of its project in Account.Projects.
type Task = strategy.TaskData

// Subtask is a generated subtask and the index of its task in Account.Tasks.
type Subtask = strategy.SubtaskData

// accountSeed derives account i's random seed from the run's seed with
// splitmix64, so neighbouring accounts get unrelated streams; it is never 0,
// which gofakeit would replace with a random seed.
func accountSeed(seed int64, i int) int64 {
	z := uint64(seed) + uint64(i+1)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	if z == 0 {
		z = 1
	}
	return int64(z)
}

// Generate builds account i as createtestdata does: a number of users and of
// projects per account, and one multiplier per level (tasks per project,
// subtasks per task) per account, each child going to a random parent.
func Generate(o Options, i int, passwordHash string) Account {
	f, a := generateUsers(o, i, passwordHash)
	v := words()

	a.Projects = make([]models.Project, f.IntRange(o.MinProjects, o.MaxProjects))
	for p := range a.Projects {
		a.Projects[p] = models.Project{Name: title(f.AppName()), Details: v.sentence(f.Rand, 12)}
	}
	if len(a.Projects) > 0 {
		a.Tasks = make([]Task, len(a.Projects)*f.IntRange(o.MinTasks, o.MaxTasks))
	}
	for t := range a.Tasks {
		a.Tasks[t] = Task{
			Task: models.Task{
				Name:       title(pick(f.Rand, v.hackerVerbs) + " the " + pick(f.Rand, v.hackerNouns)),
				IsComplete: f.Bool(),
				Details:    v.sentence(f.Rand, 10),
			},
			Project: f.IntRange(0, len(a.Projects)-1),
		}
	}
	if len(a.Tasks) > 0 {
		a.Subtasks = make([]Subtask, len(a.Tasks)*f.IntRange(o.MinSubtasks, o.MaxSubtasks))
	}
	for s := range a.Subtasks {
		a.Subtasks[s] = Subtask{
			Subtask: models.Subtask{
				Name:       title(pick(f.Rand, v.verbs) + " " + pick(f.Rand, v.adjectives) + " " + pick(f.Rand, v.nouns)),
				IsComplete: f.Bool(),
				Details:    v.sentence(f.Rand, 8),
			},
			Task: f.IntRange(0, len(a.Tasks)-1),
		}
	}
	return a
}

// generateUsers starts account i's stream: the account and its users,
// which is all SignInEmail needs.
func generateUsers(o Options, i int, passwordHash string) (*gofakeit.Faker, Account) {
	// Unlocked: the same stream as gofakeit.New, without a mutex per draw;
	// each account's Faker belongs to one goroutine.
	f := gofakeit.NewUnlocked(accountSeed(o.Seed, i))
	a := Account{Account: models.Account{Slug: strategy.Slug(i), Name: f.Company()}}

	domain := f.DomainName()
	a.Users = make([]models.User, f.IntRange(o.MinUsers, o.MaxUsers))
	for u := range a.Users {
		first, last := f.FirstName(), f.LastName()
		a.Users[u] = models.User{
			Email:      fmt.Sprintf("%s.%s.%d@%s", emailPart(first), emailPart(last), u+1, domain),
			FirstName:  first,
			LastName:   last,
			Password:   passwordHash,
			IsActive:   f.Number(0, 9) > 0,
			DateJoined: baseTime.Add(-time.Duration(f.Number(0, 3*365*24*3600)) * time.Second),
		}
	}
	return f, a
}

// SignInEmail is the email of the first active user the options give
// account i (tenant-i), whose password is SamplePassword, or false when
// all of its users are inactive (each is, one time in ten) or it has
// none: no one can sign in to that tenant.
func SignInEmail(o Options, i int) (string, bool) {
	_, a := generateUsers(o, i, "")
	for _, u := range a.Users {
		if u.IsActive {
			return u.Email, true
		}
	}
	return "", false
}

func emailPart(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "user"
	}
	return b.String()
}

func title(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// pbkdf2Iterations matches Django 4.2's default for pbkdf2_sha256.
const pbkdf2Iterations = 600_000

// HashPassword hashes password in Django's pbkdf2_sha256 format. The salt is
// derived from the seed so that two runs write identical rows; the hash is
// computed once per run, since every sample user shares the password.
func HashPassword(password string, seed int64) (string, error) {
	return hashPassword(password, seed, pbkdf2Iterations)
}

// hashPassword is HashPassword at a given cost (0: pbkdf2Iterations).
func hashPassword(password string, seed int64, iterations int) (string, error) {
	if iterations <= 0 {
		iterations = pbkdf2Iterations
	}
	salt := fmt.Sprintf("tenancy%016x", uint64(accountSeed(seed, -1)))
	key, err := pbkdf2.Key(sha256.New, password, []byte(salt), iterations, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("hash sample password: %w", err)
	}
	return fmt.Sprintf("pbkdf2_sha256$%d$%s$%s", iterations, salt, base64.StdEncoding.EncodeToString(key)), nil
}
