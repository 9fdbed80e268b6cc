package multidb_test

import (
	"testing"

	"tenancy/strategy/multidb"
	"tenancy/strategy/strategytest"
)

// TestConformance runs the behaviour every strategy promises against multidb.
func TestConformance(t *testing.T) {
	strategytest.Run(t, multidb.Harness())
}
