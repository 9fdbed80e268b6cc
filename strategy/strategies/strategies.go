// Package strategies chooses a strategy by its name: the one place that
// knows every implementation, as a program's main would, without init()
// registration or package-level state. Everything else sees only the
// interfaces of package strategy.
package strategies

import (
	"context"
	"fmt"
	"strings"

	"tenancy/strategy"
	"tenancy/strategy/audit"
	"tenancy/strategy/multidb"
	"tenancy/strategy/multischema"
	"tenancy/strategy/singleschema"
)

// Names lists the strategies that can be opened, in a stable order.
func Names() []string { return strategy.Names() }

// Known reports whether name is a strategy this package can open.
func Known(name string) bool {
	switch name {
	case strategy.MultiDB, strategy.MultiSchema, strategy.SingleSchema:
		return true
	}
	return false
}

func unknown(name string) error {
	return fmt.Errorf("strategy %q: want one of %s", name, strings.Join(Names(), ", "))
}

// Open connects the web server's side of the strategy named in opts, as
// the app role. Each refuses roles and databases that would not keep
// tenants apart (strategy.ErrUnsafeRole, strategy.ErrUnsafeDeployment).
func Open(ctx context.Context, opts strategy.Options) (strategy.Strategy, error) {
	// Each branch returns a nil interface on error, never a typed nil.
	switch opts.Strategy {
	case strategy.SingleSchema:
		s, err := singleschema.Open(ctx, opts)
		if err != nil {
			return nil, err
		}
		return s, nil
	case strategy.MultiDB:
		s, err := multidb.Open(ctx, opts)
		if err != nil {
			return nil, err
		}
		return s, nil
	case strategy.MultiSchema:
		s, err := multischema.Open(ctx, opts)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	return nil, unknown(opts.Strategy)
}

// OpenAdmin returns the setup/migrate/seed side of the strategy named in
// opts, as the admin role. It connects only when first used.
func OpenAdmin(opts strategy.Options) (strategy.Admin, error) {
	switch opts.Strategy {
	case strategy.SingleSchema:
		a, err := singleschema.NewAdmin(opts)
		if err != nil {
			return nil, err
		}
		return a, nil
	case strategy.MultiDB:
		a, err := multidb.NewAdmin(opts)
		if err != nil {
			return nil, err
		}
		return a, nil
	case strategy.MultiSchema:
		a, err := multischema.NewAdmin(opts)
		if err != nil {
			return nil, err
		}
		return a, nil
	}
	return nil, unknown(opts.Strategy)
}

// Check audits the deployment of the strategy named in opts as the admin
// role (see package audit).
func Check(ctx context.Context, opts strategy.Options) (audit.Report, error) {
	switch opts.Strategy {
	case strategy.SingleSchema:
		return audit.CheckSingleSchema(ctx, opts)
	case strategy.MultiDB:
		return audit.CheckMultiDB(ctx, opts)
	case strategy.MultiSchema:
		return audit.CheckMultiSchema(ctx, opts)
	}
	return audit.Report{}, unknown(opts.Strategy)
}
