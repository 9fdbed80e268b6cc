package loadcheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Tenant pages want a signed-in user of the tenant: a load signs in one
// user per tenant first (POST /login on the tenant's host) and sends that
// tenant's session with each of its requests, as a browser would.

// SignInOptions describe the sign-ins before a run.
type SignInOptions struct {
	// URL and BaseDomain as in Options.
	URL        string
	BaseDomain string
	// Users maps each tenant slug to the email of a user who may sign in
	// there; the slug "" is the base domain, where operators sign in.
	Users    map[string]string
	Password string
	// Client sends the requests; NewClient(Concurrency) when nil.
	Client *http.Client
	// Concurrency is how many sign-ins are in flight at once (4 when zero).
	Concurrency int
	// Patience bounds how long a sign-in keeps retrying after 429 Too Many
	// Requests, waiting what Retry-After says (1 minute when zero).
	Patience time.Duration
}

// SignIn signs in one user per tenant and returns each tenant's Cookie
// header, for Options.Sessions. It stops at the first tenant it cannot
// sign in to, with an error that says which and why.
func SignIn(ctx context.Context, o SignInOptions) (map[string]string, error) {
	u, err := CheckURL(o.URL)
	if err != nil {
		return nil, err
	}
	if o.BaseDomain == "" {
		return nil, errors.New("base domain must not be empty")
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Client == nil {
		o.Client = NewClient(o.Concurrency)
		defer o.Client.CloseIdleConnections()
	}
	if o.Patience <= 0 {
		o.Patience = time.Minute
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		mu      sync.Mutex
		cookies = make(map[string]string, len(o.Users))
		wg      sync.WaitGroup
		next    = make(chan string)
	)
	for range o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for slug := range next {
				host := o.BaseDomain // "": an operator, on the base domain
				if slug != "" {
					host = slug + "." + o.BaseDomain
				}
				if port := u.Port(); port != "" {
					host = net.JoinHostPort(host, port)
				}
				c, err := signIn(ctx, o.Client, o.URL, host, o.Users[slug], o.Password, o.Patience)
				if err != nil {
					cancel(fmt.Errorf("sign in as %s on %s: %w", o.Users[slug], slug, err))
					continue
				}
				mu.Lock()
				cookies[slug] = c
				mu.Unlock()
			}
		}()
	}
feed:
	for slug := range o.Users {
		select {
		case next <- slug:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return cookies, nil
}

// signIn posts the email and password to host's /login as JSON and
// returns the cookies the answer set, as one Cookie header.
func signIn(ctx context.Context, client *http.Client, base, host, email, password string, patience time.Duration) (string, error) {
	body, err := json.Marshal(map[string]string{"email": email, "password": password})
	if err != nil {
		return "", err
	}
	deadline := time.Now().Add(patience)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+"/login", bytes.NewReader(body))
		if err != nil {
			return "", err
		}
		req.Host = host
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		var got struct {
			SignedIn bool   `json:"signed_in"`
			Error    string `json:"error"`
		}
		_ = json.Unmarshal(answer, &got)
		switch {
		case resp.StatusCode == http.StatusTooManyRequests,
			resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
			// 429: the server limits sign-ins per address; 503: it checks
			// only so many passwords at once (a slow machine, -race).
			// Either way, wait as told.
			wait := time.Second
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
				wait = time.Duration(s) * time.Second
			}
			if time.Now().Add(wait).After(deadline) {
				return "", fmt.Errorf("%s for longer than %s: the server limits sign-ins from this address, or checks only so many passwords at once; raise its limits for the load test, or sign in fewer at once", resp.Status, patience)
			}
			select {
			case <-ctx.Done():
				return "", context.Cause(ctx)
			case <-time.After(wait):
			}
			continue
		case resp.StatusCode != http.StatusOK || !got.SignedIn:
			msg := got.Error
			if msg == "" {
				msg = "(no JSON error message)"
			}
			return "", fmt.Errorf("%s: %s", resp.Status, msg)
		}
		var parts []string
		for _, c := range resp.Cookies() {
			if c.Value != "" {
				parts = append(parts, c.Name+"="+c.Value)
			}
		}
		if len(parts) == 0 {
			return "", errors.New("signed in, but the answer set no cookie")
		}
		return strings.Join(parts, "; "), nil
	}
}
