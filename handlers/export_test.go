package handlers

import (
	"context"
	"errors"
	"net/http"

	"tenancy/strategy"
)

// NewWithRefresh is New, and a function that makes the router read the
// deployment's sign-outs now, as it does every RevocationRefresh, so that
// a test can show another server's sign-out reaching it.
func NewWithRefresh(s strategy.Strategy, o Options) (http.Handler, func(context.Context) error, error) {
	h, sess, err := newRouter(s, o)
	if err != nil {
		return nil, nil, err
	}
	if sess == nil {
		return nil, nil, errors.New("no sessions without a secret key")
	}
	return h, sess.revoked.refresh, nil
}
