# tenantry — the two commands a new machine needs are `make run` and `make test`.
GO        ?= go
BIN       ?= bin/tenantry

.PHONY: run test lint build e2e bench bench-http bench-scale chaos images clean

## run: local PostgreSQL under ./.data (when DATABASE_URL is unset), two demo tenants, tokens, serve on :8080
run:
	$(GO) run . dev

## test: every test, with the race detector, against a throwaway PostgreSQL the suite starts itself
test:
	$(GO) test -race -count=1 ./...

## lint: go vet, staticcheck (pinned with go.mod's tool directive) and gofmt
lint:
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## e2e: the Postman collection under newman against a throwaway server and PostgreSQL (needs Node.js)
e2e:
	bash postman/e2e.sh

## fuzz: each Go fuzz target for FUZZTIME (default 10s), in turn; seed corpora live in each package's testdata/fuzz
# FUZZ_TARGETS lists package:FuzzName pairs; to fuzz a new target, add a
# pair. -short and an empty CI (and REQUIRE_*) keep the suites' TestMain from starting a
# PostgreSQL cluster in every fuzz worker: no target needs a database.
FUZZTIME     ?= 10s
FUZZFLAGS    ?=
.PHONY: fuzz
FUZZ_TARGETS ?= \
	./tenancy:FuzzSchemaFor \
	./tenancy:FuzzValidSchema \
	./tenancy:FuzzPinSQL \
	./tenancy:FuzzRolesFor \
	./tenancy:FuzzValidRole \
	./migrations:FuzzSplitStatements \
	./token:FuzzTokenProfile \
	./token:FuzzCheckJSON \
	./api:FuzzItemBody \
	./models:FuzzItemInputValidate
# On a loaded machine Go's fuzzing engine can miss its own deadline while
# stopping its workers ("context deadline exceeded", no failing input): that
# target runs once more. A finding (a failing input written) never does.
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; echo "fuzz: $$fn in $$pkg for $(FUZZTIME)"; \
		for try in 1 2; do \
			if out=$$(CI= REQUIRE_DB= REQUIRE_DOCKER= $(GO) test -short -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $(FUZZFLAGS) $$pkg 2>&1); then echo "$$out"; break; fi; \
			echo "$$out"; \
			if [ $$try = 2 ] || echo "$$out" | grep -q 'Failing input written' || ! echo "$$out" | grep -q 'context deadline exceeded'; then exit 1; fi; \
			echo "fuzz: $$fn: the engine missed its own deadline, no input failed; once more"; \
		done; \
	done

## chaos: the chaos suite's long mode: faults through a loopback proxy, backend kills, restarts, a 100,000-request soak
chaos:
	CHAOS=long $(GO) test -race -count=1 -timeout 120m -run 'TestChaos' -v ./api/

## bench: onboarding and fleet-migration benchmark on its own durable PostgreSQL (a few minutes)
bench:
	$(GO) run ./cmd/fleetbench -tenants 1000

## bench-http: the whole request path, tenantry against plain Gin+GORM, a pgx floor and the seed's SET search_path (about 30 min); rewrites docs/PERFORMANCE.md
## (a smoke run that writes no file: go run ./cmd/benchhttp -rounds 1 -duration 1s -tenants 1,10)
bench-http:
	$(GO) run ./cmd/benchhttp -out docs/PERFORMANCE.md $(BENCHHTTP_FLAGS)

## bench-scale: 10,000 tenants on one durable PostgreSQL: onboarding, backend memory with and without connection recycling, throughput at 10,000 vs 100 tenants, fleet commands, backups (about 20 min on an idle machine); rewrites its block of docs/SCALE.md
bench-scale:
	$(GO) run ./cmd/scalebench -out docs/SCALE.md $(BENCHSCALE_FLAGS)

## images: base images from Debian's packages for machines without a registry (root, Docker, debootstrap)
images:
	bash .ci/images.sh

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) .

clean:
	rm -rf bin .data out
