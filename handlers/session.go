package handlers

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/securecookie"

	"tenancy/models"
)

// sessionCookie names the sign-in cookie. It is host-only (no Domain), so
// the browser sends tenant-1's cookie to tenant-1's address alone; the
// tenant named inside it is checked as well, for a cookie copied by hand.
const sessionCookie = "tenancy_session"

// DefaultSessionTTL is how long a sign-in lasts unless Options.SessionTTL
// says otherwise.
const DefaultSessionTTL = 12 * time.Hour

// session is what the cookie carries, encrypted and signed: the user, the
// tenant it was signed in on, and when it stops being accepted.
type session struct {
	TenantID models.TenantID `json:"t"`
	Slug     string          `json:"s"`
	UserID   int64           `json:"u"`
	Email    string          `json:"e"`
	Expires  int64           `json:"x"` // Unix seconds
}

// sessions issues and reads the sign-in cookie with gorilla/securecookie
// (HMAC-SHA256, AES-256-CTR), under keys derived from SECRET_KEY.
type sessions struct {
	codec *securecookie.SecureCookie
	ttl   time.Duration
	now   func() time.Time
}

func newSessions(secretKey string, ttl time.Duration, now func() time.Time) (*sessions, error) {
	if secretKey == "" {
		return nil, errors.New("handlers: sessions need a secret key")
	}
	if ttl <= 0 {
		ttl = DefaultSessionTTL
	}
	if now == nil {
		now = time.Now
	}
	codec := securecookie.New(deriveKey(secretKey, "session signing"), deriveKey(secretKey, "session encryption")).
		SetSerializer(securecookie.JSONEncoder{}).
		// securecookie's own timestamp check, a second bound on top of
		// Expires (which a test clock can move).
		MaxAge(int(ttl / time.Second))
	return &sessions{codec: codec, ttl: ttl, now: now}, nil
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
	v, err := s.codec.Encode(sessionCookie, session{
		TenantID: t.ID, Slug: t.Slug, UserID: u.ID, Email: u.Email,
		Expires: s.now().Add(s.ttl).Unix(),
	})
	if err != nil {
		return fmt.Errorf("sign session for tenant %s: %w", t.Slug, err)
	}
	s.set(c, v, int(s.ttl/time.Second))
	return nil
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
// with another key), expired, or signed in on another tenant.
func (s *sessions) read(r *http.Request, t models.Account) (session, bool) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return session{}, false
	}
	var got session
	if err := s.codec.Decode(sessionCookie, ck.Value, &got); err != nil {
		return session{}, false
	}
	if got.TenantID != t.ID || got.Slug != t.Slug || got.UserID == 0 || s.now().Unix() >= got.Expires {
		return session{}, false
	}
	return got, true
}
