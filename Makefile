.PHONY: run test generate css vendor lint reliability

run:
	go run ./cmd/server

test:
	go test ./...

# Regenerate templ code and the CSS (the CSS is committed: running the server needs no Node).
generate:
	go tool templ generate
	$(MAKE) css

node_modules: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch node_modules

css: node_modules
	npm run -s css

# Copy the pinned htmx and SSE extension from node_modules into static/js.
vendor: node_modules
	npm run -s vendor
	@printf 'htmx.min.js  htmx.org %s\nsse.js       htmx-ext-sse %s\n' \
		"$$(node -p "require('./node_modules/htmx.org/package.json').version")" \
		"$$(node -p "require('./node_modules/htmx-ext-sse/package.json').version")" > static/js/VERSIONS

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	go vet ./...

# Races, hostile input, audit completeness, auth hardening, faults and every
# fuzz target, with one summary table (FUZZTIME per target, ROUNDS per race).
FUZZTIME ?= 10s
ROUNDS ?= 50
reliability:
	go run ./cmd/reliability -fuzztime=$(FUZZTIME) -rounds=$(ROUNDS)
