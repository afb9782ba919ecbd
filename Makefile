# tenantry — the two commands a new machine needs are `make run` and `make test`.
GO        ?= go
BIN       ?= bin/tenantry

.PHONY: run test lint build e2e bench clean

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

## bench: onboarding and fleet-migration benchmark on its own durable PostgreSQL (a few minutes)
bench:
	$(GO) run ./tenancy/internal/fleetbench -tenants 1000

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) .

clean:
	rm -rf bin .data out
