package singleschema_test

import (
	"testing"

	"tenancy/strategy/singleschema"
	"tenancy/strategy/strategytest"
)

// TestConformance runs the behaviour every strategy promises against singleschema.
func TestConformance(t *testing.T) {
	strategytest.Run(t, singleschema.Harness())
}
