# Two commands bring the project up and test it; see README.md.
#   make up     PostgreSQL (a server you run keeps its settings), roles, databases, migrations, 5 sample accounts, server on :8080
#   make test   every test, against a real PostgreSQL, then each fuzz target briefly
#   make bench  seed 2,000 accounts (singleschema) and 100 (multidb, multischema) on throwaway databases, with figures
# STRATEGY=multidb, STRATEGY=multischema or STRATEGY=singleschema (default) picks the strategy.

SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
export STRATEGY ?= singleschema
ADDR ?= :8080
ACCOUNTS ?= 5
GO ?= go
# The race detector needs cgo, so a C compiler; without one the tests run without it.
RACE ?= $(shell command -v gcc >/dev/null 2>&1 && echo -race)

.PHONY: up test fuzz db pgbouncer wrk chromium citus build bench vet clean help

help:
	@sed -n 's/^#   //p' Makefile

# A PostgreSQL server on PGHOST:PGPORT (default 127.0.0.1:5432): installed,
# created and started when there is none. Only a cluster the script created
# itself is reconfigured and restarted (max_connections, shared_buffers;
# TENANCY_TUNE_POSTGRES=0 leaves it as it is too). Any other server keeps its
# settings: when its max_connections is too small for STRATEGY=multidb with
# MULTIDB_COUNT tenants, the script prints how to raise it, and goes on.
db:
	@bash scripts/ensure-postgres.sh

# The load tests put PgBouncer between the server and PostgreSQL; they
# start their own PgBouncer processes, so only the program is needed.
pgbouncer:
	@bash scripts/ensure-program.sh pgbouncer pgbouncer

# tenancy compare prefers wrk as its load generator; its test runs both.
wrk:
	@bash scripts/ensure-program.sh wrk wrk

# The browser tests (internal/browsertest) drive Debian's Chromium,
# headless, over the DevTools protocol; no driver program is needed.
chromium:
	@bash scripts/ensure-program.sh chromium chromium

# The Citus tests run singleschema on a coordinator and workers of their
# own (throwaway local clusters); Debian packages no Citus, so it is
# installed from ../shared/citus when missing. When it cannot be, those
# tests say so: skipped, or failed with CI=true.
citus:
	@bash scripts/ensure-citus.sh

build:
	$(GO) build -o bin/tenancy .

# SECRET_KEY defaults to a fresh random key for local use; set it yourself
# anywhere else.
up: db build
	./bin/tenancy setup
	./bin/tenancy seed --skip-existing --accounts $(ACCOUNTS)
	SECRET_KEY="$${SECRET_KEY:-$$(head -c 32 /dev/urandom | base64)}" ./bin/tenancy serve --addr $(ADDR)

# -timeout: go test's own 10 minutes is a whole package's; singleschema's
# Citus tests alone take 5-6 minutes under -race on two cores.
test: db pgbouncer wrk chromium citus
	$(GO) vet ./...
	$(GO) test -count=1 $(RACE) -timeout 30m ./...
	$(MAKE) --no-print-directory fuzz

# Each fuzz target for FUZZTIME inputs (go test runs one fuzz target at a
# time); failing inputs are saved under <package>/testdata/fuzz/ and then
# run by plain go test. FUZZTIME=200000x make fuzz for a longer look.
# A count, not a duration: Go 1.26 can fail a fuzz run that ends on its
# time limit with a bare "context deadline exceeded" and no failing input
# (golang/go#75804, fixed in Go 1.27); a count never reaches that deadline.
FUZZTIME ?= 20000x
FUZZ_TARGETS := handlers:FuzzParseHost handlers:FuzzParsePage handlers:FuzzRouter strategy:FuzzParseSlug internal/tenantfile:FuzzRead
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t#*:}; \
		echo "$(GO) test -run '^$$' -fuzz '^$$name\$$' -fuzztime $(FUZZTIME) ./$$pkg"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) ./$$pkg; \
	done

# Figures for the README's performance section: issue 3's seed targets.
bench: db build
	./bin/tenancy bench --strategy singleschema --accounts 2000
	./bin/tenancy bench --strategy multidb --accounts 100
	./bin/tenancy bench --strategy multischema --accounts 100
	$(GO) test -run '^$$' -bench Seed -benchtime 3x ./seed

clean:
	rm -rf bin
