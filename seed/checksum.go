package seed

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
)

// Digest identifies one account's data: a SHA-256 over every row in
// generation order, with each row's parent given by its index rather than
// its id. Ids are left out on purpose: they depend on the strategy (each
// multidb database counts from 1) and on what else was written at the time,
// while the data does not.
type Digest [sha256.Size]byte

// AccountDigest computes a's Digest.
func AccountDigest(a *Account) Digest {
	var e digester
	e.str("account").str(a.Account.Slug).str(a.Account.Name)
	e.int(int64(len(a.Users)))
	for _, u := range a.Users {
		e.str(u.Email).str(u.FirstName).str(u.LastName).str(u.Password).bool(u.IsActive).int(u.DateJoined.UnixNano())
	}
	e.int(int64(len(a.Projects)))
	for _, p := range a.Projects {
		e.str(p.Name).str(p.Details)
	}
	e.int(int64(len(a.Tasks)))
	for _, t := range a.Tasks {
		e.int(int64(t.Project)).str(t.Name).bool(t.IsComplete).str(t.Details)
	}
	e.int(int64(len(a.Subtasks)))
	for _, s := range a.Subtasks {
		e.int(int64(s.Task)).str(s.Name).bool(s.IsComplete).str(s.Details)
	}
	return sha256.Sum256(e.buf)
}

// Checksum combines account digests in account order into one short hex
// string, the figure a seed run prints so runs can be compared.
func Checksum(digests []Digest) string {
	h := sha256.New()
	for _, d := range digests {
		h.Write(d[:])
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// digester encodes values unambiguously into one buffer, hashed once:
// every string is length-prefixed, so ("ab", "c") and ("a", "bc") differ.
// (Hashing field by field cost more in Write calls than in hashing.)
type digester struct {
	buf []byte
}

func (e *digester) int(v int64) *digester {
	e.buf = binary.AppendVarint(e.buf, v)
	return e
}

func (e *digester) str(s string) *digester {
	e.int(int64(len(s)))
	e.buf = append(e.buf, s...)
	return e
}

func (e *digester) bool(b bool) *digester {
	if b {
		return e.int(1)
	}
	return e.int(0)
}
