# Two commands bring the project up and test it; see README.md.
#   make up     PostgreSQL, roles, databases, migrations, 5 sample accounts, server on :8080
#   make test   every test, against a real PostgreSQL
# STRATEGY=multidb or STRATEGY=singleschema (default) picks the strategy.

SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
export STRATEGY ?= singleschema
ADDR ?= :8080
ACCOUNTS ?= 5
GO ?= go
# The race detector needs cgo, so a C compiler; without one the tests run without it.
RACE ?= $(shell command -v gcc >/dev/null 2>&1 && echo -race)

.PHONY: up test db pgbouncer build vet clean help

help:
	@sed -n 's/^#   //p' Makefile

db:
	@bash scripts/ensure-postgres.sh

# The load tests put PgBouncer between the server and PostgreSQL; they
# start their own PgBouncer processes, so only the program is needed.
pgbouncer:
	@bash scripts/ensure-pgbouncer.sh

build:
	$(GO) build -o bin/tenancy .

# SECRET_KEY defaults to a fresh random key for local use; set it yourself
# anywhere else.
up: db build
	./bin/tenancy setup
	./bin/tenancy seed --skip-existing --accounts $(ACCOUNTS)
	SECRET_KEY="$${SECRET_KEY:-$$(head -c 32 /dev/urandom | base64)}" ./bin/tenancy serve --addr $(ADDR)

test: db pgbouncer
	$(GO) vet ./...
	$(GO) test -count=1 $(RACE) ./...

clean:
	rm -rf bin
