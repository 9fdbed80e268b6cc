package handlers

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/securecookie"
	lru "github.com/hashicorp/golang-lru/v2"

	"tenancy/models"
)

// sessionCookie names the sign-in cookie. It is host-only (no Domain), so
// the browser sends tenant-1's cookie to tenant-1's address alone; the
// tenant named inside it is checked as well, for a cookie copied by hand.
const sessionCookie = "tenancy_session"

// DefaultSessionTTL is how long a sign-in lasts unless Options.SessionTTL
// says otherwise.
const DefaultSessionTTL = 12 * time.Hour

// session is what the cookie carries, encrypted and signed: who signed
// in (a user of the tenant it was signed in on, or an operator, of no
// tenant), the session's id, which sign-out revokes, and when it stops
// being accepted. A user's session has UserID and the tenant, never
// Operator; an operator's has Operator, never a tenant or UserID: each
// kind is refused where the other is expected.
type session struct {
	ID       string          `json:"i"`
	TenantID models.TenantID `json:"t,omitempty"`
	Slug     string          `json:"s,omitempty"`
	UserID   int64           `json:"u,omitempty"`
	Operator int64           `json:"o,omitempty"`
	Email    string          `json:"e"`
	Expires  int64           `json:"x"` // Unix seconds
}

// sessions issues and reads the sign-in cookie with gorilla/securecookie
// (HMAC-SHA256, AES-256-CTR), under keys derived from SECRET_KEY, and
// reads cookies signed under the keys of SECRET_KEY_FALLBACKS too.
type sessions struct {
	// codecs are SECRET_KEY's, which signs every new cookie, then each
	// fallback's, which only verify.
	codecs  []securecookie.Codec
	ttl     time.Duration
	now     func() time.Time
	revoked *revocations
	// verified holds the cookies found genuine lately, by their exact
	// value, with what they carry: verifying one (HMAC, AES, JSON) cost
	// 10-12 µs of a 110-160 µs page under load, the largest part of what
	// requiring a sign-in cost the page, and a browser sends the same
	// cookie with every request. Only genuine cookies get in, so a flood
	// of forged ones cannot push the real ones out; expiry and sign-out
	// are checked on every request all the same.
	verified *lru.Cache[string, session]
}

// verifiedCookies bounds sessions.verified: about 4 MB at most.
const verifiedCookies = 10_000

func newSessions(secretKey string, ttl time.Duration, now func() time.Time, fallbacks ...string) (*sessions, error) {
	if secretKey == "" {
		return nil, errors.New("handlers: sessions need a secret key")
	}
	if ttl <= 0 {
		ttl = DefaultSessionTTL
	}
	if now == nil {
		now = time.Now
	}
	verified, err := lru.New[string, session](verifiedCookies)
	if err != nil {
		return nil, err
	}
	s := &sessions{ttl: ttl, now: now, verified: verified}
	for _, key := range append([]string{secretKey}, fallbacks...) {
		if key == "" {
			return nil, errors.New("handlers: a fallback secret key must not be empty")
		}
		s.codecs = append(s.codecs, securecookie.New(deriveKey(key, "session signing"), deriveKey(key, "session encryption")).
			SetSerializer(securecookie.JSONEncoder{}).
			// securecookie's own timestamp check, a second bound on top
			// of Expires (which a test clock can move).
			MaxAge(int(ttl/time.Second)))
	}
	return s, nil
}

// deriveKey gives each use of SECRET_KEY a key of its own, so that a
// cookie's signing key is not also the key of something else signed later
// (CSRF tokens, say).
func deriveKey(secretKey, purpose string) []byte {
	m := hmac.New(sha256.New, []byte(secretKey))
	m.Write([]byte("tenancy " + purpose))
	return m.Sum(nil)
}

// issue signs u in on tenant t for this host.
func (s *sessions) issue(c *gin.Context, t models.Account, u models.User) error {
	if err := s.write(c, session{TenantID: t.ID, Slug: t.Slug, UserID: u.ID, Email: u.Email}); err != nil {
		return fmt.Errorf("sign session for tenant %s: %w", t.Slug, err)
	}
	return nil
}

// issueOperator signs operator o in on the base domain.
func (s *sessions) issueOperator(c *gin.Context, o models.Operator) error {
	if err := s.write(c, session{Operator: o.ID, Email: o.Email}); err != nil {
		return fmt.Errorf("sign session for operator %d: %w", o.ID, err)
	}
	return nil
}

// write gives v a fresh id and expiry and sets it as the cookie, signed
// with SECRET_KEY.
func (s *sessions) write(c *gin.Context, v session) error {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return err
	}
	v.ID = base64.RawURLEncoding.EncodeToString(id)
	v.Expires = s.now().Add(s.ttl).Unix()
	value, err := s.codecs[0].Encode(sessionCookie, v)
	if err != nil {
		return err
	}
	s.set(c, value, int(s.ttl/time.Second))
	return nil
}

// signOut revokes v: this server refuses it at once, the others once they
// have read the sign-out (RevocationRefresh).
func (s *sessions) signOut(c *gin.Context, v session) error {
	if s.revoked == nil {
		return nil
	}
	return s.revoked.revoke(c.Request.Context(), v)
}

// clear tells the browser to drop the cookie.
func (s *sessions) clear(c *gin.Context) { s.set(c, "", -1) }

func (s *sessions) set(c *gin.Context, value string, maxAge int) {
	http.SetCookie(c.Writer, &http.Cookie{
		Name:     sessionCookie,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
		// Behind a TLS-terminating proxy the request arrives over plain
		// HTTP and the cookie goes without Secure; X-Forwarded-Proto is
		// not trusted, since anyone can send it.
		Secure: c.Request.TLS != nil,
	})
}

// read returns the session the request's cookie carries for tenant t, or
// false: no cookie, one that does not decode (forged, damaged, signed
// with a key that is neither SECRET_KEY nor a fallback), expired, signed
// out, an operator's, or signed in on another tenant.
func (s *sessions) read(r *http.Request, t models.Account) (session, bool) {
	got, ok := s.decode(r)
	if !ok || got.TenantID != t.ID || got.Slug != t.Slug || got.UserID == 0 || got.Operator != 0 {
		return session{}, false
	}
	return got, true
}

// readOperator returns the operator's session the request's cookie
// carries, or false: as read, and a tenant user's session is not one.
func (s *sessions) readOperator(r *http.Request) (session, bool) {
	got, ok := s.decode(r)
	if !ok || got.Operator == 0 || got.TenantID != 0 || got.Slug != "" || got.UserID != 0 {
		return session{}, false
	}
	return got, true
}

// decode is the cookie's session if it is genuine, current and not
// signed out.
func (s *sessions) decode(r *http.Request) (session, bool) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return session{}, false
	}
	got, ok := s.verified.Get(ck.Value)
	if !ok {
		if err := securecookie.DecodeMulti(sessionCookie, ck.Value, &got, s.codecs...); err != nil {
			return session{}, false
		}
		s.verified.Add(ck.Value, got)
	}
	if got.ID == "" || s.now().Unix() >= got.Expires {
		return session{}, false
	}
	if s.revoked != nil && s.revoked.has(r.Context(), got.ID, got.Expires) {
		return session{}, false
	}
	return got, true
}
