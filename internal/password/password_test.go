package password

import (
	"errors"
	"strings"
	"testing"
	"time"

	"tenancy/seed"
)

// Vectors computed with Python's standard library, which is what Django's
// PBKDF2PasswordHasher calls:
//
//	base64.b64encode(hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations))
//
// The 600,000-iteration one is Django 4.2's own (tests/auth_tests/
// test_hashers.py, test_pbkdf2: make_password("lètmein", "seasalt",
// "pbkdf2_sha256")).
const (
	djangoVector = "pbkdf2_sha256$600000$seasalt$OAXyhAQ/4ZDA9V5RMExt3C1OwQdUpLZ99vm1McFlLRA="
	fewRounds    = "pbkdf2_sha256$1000$seasalt$oePW62TgPkf4xudE9TR0YuyE+wWDLnH+wP+Uy4sXCBU="
	oneRound     = "pbkdf2_sha256$1$seasalt2$h3NICSKfQIQZrgY1hu9zvFs/fKpyZxtJcUgT2+Ye20k="
	emptyWord    = "pbkdf2_sha256$2$x$DbJWPo0PmIefdmiayG9/ThLKNfe1jk/gcsT2jDqCYTE="
)

func TestVerify(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, password, encoded string
		want                    bool
	}{
		{"django's vector", "lètmein", djangoVector, true},
		{"django's vector, wrong password", "lètmeinz", djangoVector, false},
		{"1000 rounds", "tenancy-sample", fewRounds, true},
		{"1000 rounds, case differs", "Tenancy-sample", fewRounds, false},
		{"1000 rounds, empty password", "", fewRounds, false},
		{"non-ASCII password, one round", "lètmein", oneRound, true},
		{"non-ASCII password, not normalised", "le\u0300tmein", oneRound, false},
		{"empty password", "", emptyWord, true},
		{"empty hash's password is not any", "x", emptyWord, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Verify(tc.password, tc.encoded)
			if err != nil || got != tc.want {
				t.Errorf("Verify(%q, %q) = %v, %v; want %v, nil", tc.password, tc.encoded, got, err, tc.want)
			}
		})
	}
}

// TestVerifySeededHash: what seed writes for every sample user is what
// sign-in accepts, with the sample password and no other.
func TestVerifySeededHash(t *testing.T) {
	t.Parallel()
	encoded, err := seed.HashPassword(seed.SamplePassword, seed.DefaultSeed)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		password string
		want     bool
	}{
		{seed.SamplePassword, true},
		{seed.SamplePassword + " ", false},
	} {
		if got, err := Verify(tc.password, encoded); err != nil || got != tc.want {
			t.Errorf("Verify(%q, seeded hash %q) = %v, %v; want %v, nil", tc.password, encoded, got, err, tc.want)
		}
	}
}

func TestVerifyMalformed(t *testing.T) {
	t.Parallel()
	key := "oePW62TgPkf4xudE9TR0YuyE+wWDLnH+wP+Uy4sXCBU="
	for _, encoded := range []string{
		"",
		"$",
		"$$$",
		"tenancy-sample",
		"!unusable-django-password",
		"pbkdf2_sha256",
		"pbkdf2_sha256$1000$seasalt",
		"pbkdf2_sha256$1000$seasalt$" + key + "$extra",
		"pbkdf2_sha1$1000$seasalt$" + key,
		"PBKDF2_SHA256$1000$seasalt$" + key,
		"argon2$argon2id$v=19$m=102400,t=2,p=8",
		"pbkdf2_sha256$$seasalt$" + key,
		"pbkdf2_sha256$0$seasalt$" + key,
		"pbkdf2_sha256$-1$seasalt$" + key,
		"pbkdf2_sha256$1e3$seasalt$" + key,
		"pbkdf2_sha256$ 1000$seasalt$" + key,
		"pbkdf2_sha256$99999999999999999999$seasalt$" + key,
		"pbkdf2_sha256$2147483647$seasalt$" + key,
		"pbkdf2_sha256$1000$$" + key,
		"pbkdf2_sha256$1000$seasalt$",
		"pbkdf2_sha256$1000$seasalt$not base64!",
		"pbkdf2_sha256$1000$seasalt$" + strings.TrimRight(key, "="),
		"pbkdf2_sha256$1000$seasalt$" + key[:len(key)-4],
		"pbkdf2_sha256$1000$seasalt$" + key + key,
		"pbkdf2_sha256$1000$seasalt$oePW62TgPkf4xudE9TR0YuyE-wWDLnH_wP-Uy4sXCBU=",
	} {
		t.Run(encoded, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			got, err := Verify("tenancy-sample", encoded)
			if got || !errors.Is(err, ErrMalformed) {
				t.Errorf("Verify(%q) = %v, %v; want false, ErrMalformed", encoded, got, err)
			}
			if err != nil && strings.Contains(err.Error(), "seasalt") {
				t.Errorf("Verify(%q) error %q quotes the stored hash", encoded, err)
			}
			// Refused before any hashing: a damaged row costs nothing
			// (Check is what evens the time out).
			if d := time.Since(start); d > 50*time.Millisecond {
				t.Errorf("Verify(%q) took %v, want it refused before hashing", encoded, d)
			}
		})
	}
}

// TestCheckCostsTheSameFoundOrNot: an email with no user, a wrong password
// and a malformed stored hash each cost one derivation at Iterations, as a
// right password does, so sign-in's timing does not tell them apart.
//
// Not parallel, so that the package's other derivations do not share the
// CPU with it; each case's fastest of three runs is compared, which a
// busy machine slows less than a single run.
func TestCheckCostsTheSameFoundOrNot(t *testing.T) {
	seeded, err := seed.HashPassword(seed.SamplePassword, seed.DefaultSeed)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		ok  bool
		d   time.Duration
		err error
	}
	check := func(pw, encoded string) result {
		var r result
		for i := range 3 {
			start := time.Now()
			ok, err := Check(pw, encoded)
			if d := time.Since(start); i == 0 || d < r.d {
				r.d = d
			}
			r.ok, r.err = ok, err
		}
		return r
	}
	right := check(seed.SamplePassword, seeded)
	if !right.ok || right.err != nil {
		t.Fatalf("Check(sample password, seeded hash) = %v, %v; want true, nil", right.ok, right.err)
	}
	for _, tc := range []struct {
		name, password, encoded string
		malformed               bool
	}{
		{"no such user", seed.SamplePassword, "", false},
		{"wrong password", "guess", seeded, false},
		{"malformed stored hash", seed.SamplePassword, "!unusable", true},
	} {
		r := check(tc.password, tc.encoded)
		if r.ok || errors.Is(r.err, ErrMalformed) != tc.malformed {
			t.Errorf("%s: Check = %v, %v; want false (ErrMalformed: %v)", tc.name, r.ok, r.err, tc.malformed)
		}
		// Within a factor of two of the right password: the derivation is
		// the cost, and one at 600,000 iterations is tens of milliseconds
		// at least, far above the noise of the rest.
		if r.d < right.d/2 || r.d > right.d*2 {
			t.Errorf("%s: Check took %v, the right password %v; want them within a factor of 2", tc.name, r.d, right.d)
		}
	}
}

// TestDummyIsValid: the hash Check falls back to is well formed, at the
// seeded users' cost, and matches no password tried.
func TestDummyIsValid(t *testing.T) {
	t.Parallel()
	iterations, _, _, err := parse(dummy)
	if err != nil || iterations != Iterations {
		t.Fatalf("parse(dummy) = %d iterations, %v; want %d, nil", iterations, err, Iterations)
	}
	for _, pw := range []string{"", seed.SamplePassword} {
		if ok, err := Verify(pw, dummy); ok || err != nil {
			t.Errorf("Verify(%q, dummy) = %v, %v; want false, nil", pw, ok, err)
		}
	}
}

// BenchmarkVerify is the cost of one sign-in's hashing at the seeded
// users' 600,000 iterations.
func BenchmarkVerify(b *testing.B) {
	encoded, err := seed.HashPassword(seed.SamplePassword, seed.DefaultSeed)
	if err != nil {
		b.Fatal(err)
	}
	if !strings.HasPrefix(encoded, "pbkdf2_sha256$600000$") {
		b.Fatalf("seeded hash %q is not at 600,000 iterations", encoded)
	}
	for b.Loop() {
		if ok, err := Verify(seed.SamplePassword, encoded); !ok || err != nil {
			b.Fatalf("Verify = %v, %v", ok, err)
		}
	}
}

// TestHashVerifies: a hash made by Hash verifies its password and no
// other, and two hashes of one password differ (random salts).
func TestHashVerifies(t *testing.T) {
	const pw = "correct horse battery"
	a, err := Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Hash(pw)
	if !strings.HasPrefix(a, "pbkdf2_sha256$600000$") || a == b || strings.Contains(a, pw) {
		t.Errorf("Hash = %q, %q: want pbkdf2_sha256 at 600000 iterations, different salts, no plain text", a, b)
	}
	for _, tc := range []struct {
		pw   string
		want bool
	}{{pw, true}, {pw + " ", false}, {"", false}} {
		if ok, err := Verify(tc.pw, a); ok != tc.want || err != nil {
			t.Errorf("Verify(%q, Hash(%q)) = %v, %v; want %v", tc.pw, pw, ok, err, tc.want)
		}
	}
}

func TestAcceptable(t *testing.T) {
	for _, tc := range []struct {
		pw string
		ok bool
	}{
		{"", false},
		{"short", false},
		{"aaaaaaaaaaaaaaaa", false},
		{"tenancy-sample", false},
		{"MyPassword123456", false},
		{"correct horse battery", true},
		{"ünïcödé-pässwörd", true},
	} {
		if err := Acceptable(tc.pw); (err == nil) != tc.ok {
			t.Errorf("Acceptable(%q) = %v, want ok %v", tc.pw, err, tc.ok)
		}
	}
}
