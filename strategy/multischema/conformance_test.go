package multischema_test

import (
	"testing"

	"tenancy/strategy/multischema"
	"tenancy/strategy/strategytest"
)

// TestConformance runs the behaviour every strategy promises against
// multischema.
func TestConformance(t *testing.T) {
	strategytest.Run(t, multischema.Harness())
}
