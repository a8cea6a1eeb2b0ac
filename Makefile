# harden: the two commands that matter are `make run` and `make test` (see README.md).
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
MAX_BINARY_BYTES := 20000000

.PHONY: build run test vet unit deps bench integration fmt clean

# A static binary (no libc: it runs in any VM image, before anything else is up).
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/harden ./cmd/harden
	@size=$$(stat -c %s bin/harden); echo "bin/harden: $$size bytes"; \
	  [ $$size -lt $(MAX_BINARY_BYTES) ] || { echo "bin/harden is over 20 MB" >&2; exit 1; }

# The plan harden would apply on this machine with the embedded default policy. Dry-run:
# changes nothing. The exit status is printed, not failed on (2 means "would change").
run: build
	@./bin/harden apply --dry-run --detailed-exitcode; \
	  echo "exit status $$? (0 nothing to change, 1 error or finding at run.fail_on, 2 changes pending)"

# Everything CI runs before the VM suite. Privileged tests need root (network namespaces,
# the audit netlink socket) and the tools `make deps` installs; without them they skip with
# the reason, and under HARDEN_REQUIRE_PRIVILEGED=1 (CI) they fail naming what is missing.
test: vet build unit

# The host tools the tests and benchmarks use as real parts (apt-get; as root).
deps:
	@scripts/install-deps.sh

vet:
	@test -z "$$(gofmt -l cmd internal steps assets integration bench 2>/dev/null)" || { gofmt -l cmd internal steps assets; echo "gofmt needed" >&2; exit 1; }
	$(GO) vet ./...

# HARDEN_REFUSE_HOST_NETNS=1: the firewall step refuses this machine's own namespace, so a
# test that forgot its namespace fails instead of cutting the machine off.
# HARDEN_REFUSE_AUDIT_LOCK=1: the audit step never locks this machine's audit rules (-e 2).
unit:
	HARDEN_REFUSE_HOST_NETNS=1 HARDEN_REFUSE_AUDIT_LOCK=1 scripts/gotest.sh ./...

# Every bench script (each prints its figures as ratios against a reference tool or budget);
# a script that fails fails the target. As root: the firewall and audit figures load real
# rulesets (in namespaces the scripts make, and under the host audit lock). The reference
# tools (nft, auditctl, time) come from `make deps`, so a fresh machine runs them all.
bench: deps build
	HARDEN_REFUSE_HOST_NETNS=1 HARDEN_REFUSE_AUDIT_LOCK=1 $(GO) test -run '^$$' -bench . -benchmem ./...
	@set -e; for s in bench/*.sh; do echo "== $$s"; HARDEN_REFUSE_HOST_NETNS=1 HARDEN_REFUSE_AUDIT_LOCK=1 "$$s"; done

# Boots real VMs under QEMU (see integration/README or the README's VM section).
integration: build
	integration/run.sh

fmt:
	gofmt -w cmd internal steps assets

clean:
	rm -rf bin
