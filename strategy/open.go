package strategy

import (
	"context"
	"fmt"
)

// Open connects the web server's side of the strategy named in opts, as the
// app role. It refuses a role that row-level security would not apply to
// (ErrUnsafeRole) and, in singleschema, tenanted tables whose row-level
// security or policies would let the app role past them
// (ErrUnsafeDeployment): the findings of Check that the app role can see.
func Open(ctx context.Context, opts Options) (Strategy, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	switch opts.Strategy {
	case SingleSchema:
		return openSingleSchema(ctx, opts)
	default:
		return openMultiDB(ctx, opts)
	}
}

// OpenAdmin returns the setup/migrate/seed side of the strategy named in
// opts, as the admin role. It connects only when first used.
func OpenAdmin(opts Options) (Admin, error) {
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("invalid options: %w", err)
	}
	switch opts.Strategy {
	case SingleSchema:
		return &singleSchemaAdmin{opts: opts}, nil
	default:
		return &multiDBAdmin{opts: opts}, nil
	}
}
