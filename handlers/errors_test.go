package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"tenancy/strategy"
)

// TestStatusOf: each kind of failure gets its status and a message that
// says what to do, whatever wraps it; a tenant being upgraded is told so,
// not that its data is missing.
func TestStatusOf(t *testing.T) {
	tests := []struct {
		err    error
		status int
		says   string
	}{
		{fmt.Errorf("tenant tenant-1: %w", strategy.ErrTenantUpgrading), http.StatusServiceUnavailable, "being upgraded"},
		{fmt.Errorf("tenant tenant-1: %w", strategy.ErrTenantUnavailable), http.StatusServiceUnavailable, "not available right now"},
		{fmt.Errorf("x: %w", strategy.ErrUnavailable), http.StatusServiceUnavailable, "not reachable"},
		{fmt.Errorf("x: %w", strategy.ErrTenantNotFound), http.StatusNotFound, "no such tenant"},
		{fmt.Errorf("tenant tenant-1: %w: permission denied for table subtasks", strategy.ErrMissingPrivilege), http.StatusInternalServerError, "setup is incomplete"},
		{errors.New("boom"), http.StatusInternalServerError, "went wrong"},
	}
	for _, tt := range tests {
		status, msg := statusOf(tt.err)
		if status != tt.status || !strings.Contains(msg, tt.says) {
			t.Errorf("statusOf(%v) = %d %q, want %d saying %q", tt.err, status, msg, tt.status, tt.says)
		}
	}
}
