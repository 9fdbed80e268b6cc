// Package password checks passwords against hashes in Django's
// pbkdf2_sha256 format ("pbkdf2_sha256$<iterations>$<salt>$<base64 of the
// derived key>"), the format seed writes and Django's auth_user keeps, so
// one users table serves both. It verifies only: the sample users' hashes
// are written by seed, and there is no way yet to set a password.
package password

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Algorithm is the one hasher this package knows, as Django names it.
const Algorithm = "pbkdf2_sha256"

// Iterations is Django 4.2's default for pbkdf2_sha256, which seed uses and
// dummy is made with, so that a sign-in for an email nobody has costs what
// one for a seeded user does.
const Iterations = 600_000

// maxIterations bounds the work one stored hash can ask for: a hash is
// read from the database, and a row written with 2^31 iterations must not
// hold a CPU for hours.
const maxIterations = 10_000_000

// ErrMalformed: the stored hash is not a pbkdf2_sha256 hash this package
// can check (another algorithm, Django's unusable "!" password, or a
// damaged value). No password matches it.
var ErrMalformed = errors.New("password hash is not in pbkdf2_sha256$<iterations>$<salt>$<hash> form")

// dummy is the hash verified when there is no user to verify against:
// valid, at Iterations, of no known password (its key is 32 fixed bytes,
// not the output of any derivation), so nothing ever matches it.
const dummy = "pbkdf2_sha256$600000$tenancy-no-user$AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

// Verify reports whether password is the one encoded hashes, comparing the
// derived keys in constant time. A malformed encoded is false with an
// error wrapping ErrMalformed, returned before any hashing: callers that
// must not let it be timed use Check.
func Verify(password, encoded string) (bool, error) {
	iterations, salt, want, err := parse(encoded)
	if err != nil {
		return false, err
	}
	got, err := pbkdf2.Key(sha256.New, password, []byte(salt), iterations, len(want))
	if err != nil {
		return false, fmt.Errorf("derive pbkdf2_sha256 key: %w", err)
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// Check is what sign-in calls: whether password is the one encoded
// hashes, where encoded is the stored hash of the user the email names,
// or "" when no user has it. Every call costs one derivation at
// Iterations or more, found or not, malformed or not, so that the time of
// an answer does not tell which emails have an account. Its error is
// only for logging (a malformed stored hash); the answer is false then.
func Check(password, encoded string) (bool, error) {
	if encoded == "" {
		_, err := Verify(password, dummy)
		return false, err
	}
	ok, err := Verify(password, encoded)
	if errors.Is(err, ErrMalformed) {
		// Spend the time a real hash would have, then refuse.
		if _, derr := Verify(password, dummy); derr != nil {
			return false, errors.Join(err, derr)
		}
	}
	return ok, err
}

// parse splits a Django pbkdf2_sha256 hash. Django writes the salt as text
// (no "$" in it) and the key in standard base64 with padding.
func parse(encoded string) (iterations int, salt string, key []byte, err error) {
	malformed := func(why string) (int, string, []byte, error) {
		return 0, "", nil, fmt.Errorf("%w: %s", ErrMalformed, why)
	}
	parts := strings.Split(encoded, "$")
	if len(parts) != 4 {
		return malformed(fmt.Sprintf("%d fields separated by $, want 4", len(parts)))
	}
	if parts[0] != Algorithm {
		// Not quoted back: a stored hash is not for logs.
		return malformed("another algorithm than " + Algorithm)
	}
	iterations, err = strconv.Atoi(parts[1])
	if err != nil || iterations < 1 || iterations > maxIterations {
		return malformed(fmt.Sprintf("iterations must be a number from 1 to %d", maxIterations))
	}
	if parts[2] == "" {
		return malformed("empty salt")
	}
	key, err = base64.StdEncoding.Strict().DecodeString(parts[3])
	if err != nil || len(key) != sha256.Size {
		return malformed(fmt.Sprintf("the key must be %d bytes in standard base64", sha256.Size))
	}
	return iterations, parts[2], key, nil
}

// MinLength is the fewest characters Acceptable takes, as Django's
// MinimumLengthValidator's default asks of a password.
const MinLength = 12

// Acceptable says why password is too weak to keep, or nil: empty, shorter
// than MinLength, all one character, or the sample users' published
// password. A message for the person choosing it.
func Acceptable(password string) error {
	switch {
	case password == "":
		return errors.New("the password is empty")
	case len([]rune(password)) < MinLength:
		return fmt.Errorf("the password is %d characters long; use at least %d", len([]rune(password)), MinLength)
	case strings.Trim(password, password[:1]) == "":
		return errors.New("the password repeats one character")
	case strings.EqualFold(password, "tenancy-sample"), strings.Contains(strings.ToLower(password), "password"):
		return errors.New("the password is a published or common one")
	}
	return nil
}

// Hash hashes password in Django's pbkdf2_sha256 format at Iterations, with
// a random salt of 22 characters, as Django's make_password does. It does
// not judge the password: Acceptable does.
func Hash(password string) (string, error) {
	// Base32 (A-Z, 2-7), within the letters and digits of Django's salts.
	salt := []byte(rand.Text()[:22])
	key, err := pbkdf2.Key(sha256.New, password, salt, Iterations, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("derive pbkdf2_sha256 key: %w", err)
	}
	return fmt.Sprintf("%s$%d$%s$%s", Algorithm, Iterations, salt, base64.StdEncoding.EncodeToString(key)), nil
}
