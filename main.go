// Command tenancy sets up, fills and serves the two multi-tenancy strategies
// (multidb, multischema and singleschema) on PostgreSQL. Run `tenancy help` for commands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/gin-gonic/gin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	gin.SetMode(gin.ReleaseMode)
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "tenancy:", err)
		os.Exit(exitCode(err))
	}
}
