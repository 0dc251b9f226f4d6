# Keeping oomsight current (docs/maintenance.md): one collector release for
# every collector module, and no known vulnerability that oomsight's code
# reaches. Included by the Makefile; `make test` reaches check-otel and
# vulncheck.

.PHONY: check-otel update-otel vulncheck

# internal/tools/otelrelease checks and moves the collector modules of
# go.mod, deploy/go.mod, internal/tools/go.mod and builder-config.yaml.
OTELRELEASE := cd internal/tools && $(GO) run ./otelrelease

## check-otel: every collector module (core v0/v1, contrib, ocb, mdatagen)
## of go.mod, deploy/go.mod, internal/tools/go.mod and builder-config.yaml
## at one release; fails listing the ones off it (first vet, lint and the
## tests of internal/tools' otelrelease and vulndb, which make lint's
## ./... does not reach: internal/tools is a module of its own)
check-otel:
	cd internal/tools && $(GO) vet ./otelrelease/ ./vulndb/
	cd internal/tools && $(GO) tool golangci-lint run ./otelrelease/... ./vulndb/...
	cd internal/tools && $(GO) test -count=1 ./otelrelease/ ./vulndb/
	$(OTELRELEASE) check -root ../..

## update-otel: VERSION=v0.N.0 [STABLE=v1.M.0] [CONTRIB=v0.N.1]
## [CONTRIB_STABLE=v1.K.0]: move every collector module to that release
## (core's v1 pair from componenttest v0.N.0's go.mod, contrib's v1 series
## v1.(N-161).0, unless given). Fails before changing anything, listing
## them, when the module proxy does not serve a collector module of it;
## then tidies the three modules, regenerates, builds and vets.
update-otel:
	$(OTELRELEASE) update -root ../.. -version '$(VERSION)' -stable '$(STABLE)' -contrib '$(CONTRIB)' -contrib-stable '$(CONTRIB_STABLE)'
	cd internal/tools && $(GO) mod tidy
	$(GO) mod tidy
	cd deploy && $(GO) mod tidy
	@$(MAKE) --no-print-directory generate build vet VERSION='$(DIST_VERSION)'
	$(OTELRELEASE) check -root ../..

# The vulnerability database: the OSV entries of the golang.org/x/vulndb
# module (through the module proxy, checked against the checksum database),
# laid out as govulncheck's v1 database by internal/tools/vulndb, cached
# under _build by the vulndb version. Move VULNDB_VERSION by hand to learn
# of newer vulnerabilities: `go list -m golang.org/x/vulndb@latest` (the
# module has pseudo-versions only, which Renovate does not follow here).
VULNDB_VERSION := v0.0.0-20261105234957-e22db6528018
VULNDB         := $(abspath $(BUILD))/vulndb/$(VULNDB_VERSION)
GOVULNCHECK    := $(GO) tool -modfile=$(abspath internal/tools/go.mod) govulncheck -db file://$(VULNDB)

$(VULNDB)/index/db.json:
	cd internal/tools && $(GO) run ./vulndb -version $(VULNDB_VERSION) -out $(VULNDB)

## vulncheck: govulncheck on the module, deploy/ and the built distribution
## against the database of VULNDB_VERSION; fails on any vulnerability that
## the code reaches (symbol level; in the distribution, its linked symbols)
vulncheck: $(VULNDB)/index/db.json $(BUILD)/otelcol-oomsight
	$(GOVULNCHECK) ./...
	cd deploy && $(GOVULNCHECK) ./...
	$(GOVULNCHECK) -mode binary $(BUILD)/otelcol-oomsight
