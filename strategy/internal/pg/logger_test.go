package pg

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"gorm.io/gorm/logger"
)

// TestSlowQueriesRendersOnlyWhatItLogs: the SQL of a statement is rendered
// (fc called) only for a slow statement, or for every statement in Debug
// mode; never for a failed one, whose error the caller reports.
func TestSlowQueriesRendersOnlyWhatItLogs(t *testing.T) {
	base := slowQueries{Interface: logger.NewSlogLogger(slog.New(slog.DiscardHandler), logger.Config{SlowThreshold: slowQuery, LogLevel: logger.Warn})}
	tests := []struct {
		name   string
		l      logger.Interface
		took   time.Duration
		err    error
		render bool
	}{
		{"fast", base, time.Millisecond, nil, false},
		{"slow", base, 2 * slowQuery, nil, true},
		{"failed", base, 2 * slowQuery, errors.New("boom"), false},
		{"fast in debug mode", base.LogMode(logger.Info), time.Millisecond, nil, true},
	}
	for _, tt := range tests {
		rendered := false
		tt.l.Trace(context.Background(), time.Now().Add(-tt.took), func() (string, int64) {
			rendered = true
			return "SELECT 1", 1
		}, tt.err)
		if rendered != tt.render {
			t.Errorf("%s statement: SQL rendered = %v, want %v", tt.name, rendered, tt.render)
		}
	}
}
