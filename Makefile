# btest-go: `make run` starts the main job (Caddy with the btest app on the
# example config); `make test` runs the whole suite.

GO        ?= go
# Worked out once, and handed to the sub-makes (make test runs two) in
# the environment: under load every $(shell) takes a moment, and make
# expands a recipe's, and its sub-make's, one after the other.
ifeq ($(origin BTEST_GOPATH),undefined)
export BTEST_GOPATH := $(shell $(GO) env GOPATH)
endif
GOBIN     := $(BTEST_GOPATH)/bin
STATICCHECK_VERSION := v0.8.2
FUZZTIME  ?= 20s
BIN       := bin

FORCE:

.PHONY: FORCE all build btest caddy telegraf-input run test test-deps test-measured test-core test-caddy test-packages test-norace test-release test-cross release-snapshot test-alone test-shaped test-short bench fuzz lint tools release screenshot clean

all: build

build: btest caddy telegraf-input

btest:
	$(GO) build -o $(BIN)/btest ./cmd/btest

caddy:
	$(GO) build -o $(BIN)/caddy ./cmd/xcaddy-build

telegraf-input:
	$(GO) build -o $(BIN)/btest-telegraf ./cmd/btest-telegraf

# The main job: Caddy serving a small site and a btest server on :2000.
# Credentials come from BTEST_USER / BTEST_PASSWORD (defaults in the README).
run: caddy
	./$(BIN)/caddy run --config examples/Caddyfile --adapter caddyfile

# The whole suite, fuzz seed corpora included (they run as ordinary tests).
# It first installs the outside parts the end-to-end tests drive (InfluxDB,
# a slim Telegraf, ...; idempotent and cached), then requires them:
# BTEST_E2E=1 turns a missing part into a failure instead of a skip.
# The tests that measure rates, loss or time (the rate and loss accuracy
# checks, the shaped-link test over a bottleneck between two network
# namespaces) would measure the machine if the other packages' tests
# starved them of CPU. They need little CPU but need it when they ask, so
# they run from the start in the real-time class at its lowest priority
# ($(MEASURE): SCHED_RR 1), which takes a CPU from ordinary tasks as soon
# as it wakes, while everything else runs beside them as usual and gets
# what they leave. They are held to the last CPU (taskset), so the rest
# always has the others: on all CPUs, their bursts took both of a 2-core
# machine's at once, and a loopback UDP test at 300 Mbit/s beside them
# lost a quarter of its datagrams. (Run after the rest, alone, they added
# half a minute of a mostly idle machine to every run. Running the rest
# in the idle class instead starved it whenever another program kept the
# CPUs busy: a `make run` with a test in another terminal held up an
# attack test's attacker for seconds.) Without the right to real-time
# scheduling, the rest runs in the idle class ($(BACKGROUND)).
# The shaped-link test runs without -race: the race detector's fivefold
# CPU per datagram made its peers' timing, which it measures, the
# machine's (the same code runs under -race in core's loopback tests).
# -parallel 8 and -p 4: most tests wait on sockets and timers, not the CPU,
# so more tests and packages than the machine's cores run at once.
# The go test runs start at once, so that the longest packages do not
# wait for the others' test binaries to link: core, the Caddy app, the
# release tests (./packaging), EC-SRP5 (test-norace), and the rest. The Caddy app's tests drive a
# Caddy built from cmd/xcaddy-build; make builds it beside the test
# binaries (BTEST_CADDY), so its link does not hold up the tests' first
# seconds the way building it inside the test run would. The release
# tests take longest (a GoReleaser snapshot of 20 binaries: make starts
# it first, as it is what the whole run waits for), and they run
# none of our code in-process (they check the release's files and run its
# binaries), so they build without -race, which has nothing to watch
# there and would make reading the archives ten times slower.
# -ldflags=-s -w: no symbol table or DWARF in the test binaries, which cuts
# a third off linking them (the Caddy app's is 90 MB); race reports and
# panics still name every file and line (they read the pclntab).
# -trimpath: file names relative to the module, so the build cache serves
# a fresh clone at another path too (without it every package of ours is
# compiled again there, with and without -race: a minute of CPU).
TESTBUILD ?= '-ldflags=-s -w' -trimpath
TESTFLAGS ?= -race -count=1 -parallel 8 -p 4 $(TESTBUILD)
ifeq ($(origin MEASURE),undefined)
export MEASURE := $(if $(shell chrt --rr 1 true 2>/dev/null && echo y),taskset -c $(shell echo $$(( $$(nproc) - 1 ))) chrt --rr 1)
endif
ifeq ($(origin BACKGROUND),undefined)
export BACKGROUND := $(if $(MEASURE),,$(if $(shell command -v chrt),chrt --idle 0,nice -n 19))
endif
ALONE     := $(BIN)/test
test: test-deps
	@$(MAKE) --no-print-directory -j8 test-release test-measured test-core test-caddy test-packages test-norace test-cross

# Test binaries built once for their runs: core's with and without -race
# (the suite's, the accuracy checks', the shaped links'), the Caddy app's.
# bin/test/<package>[-race].test is the test binary of ./<package>. Core's
# are built outside $(BACKGROUND): the measuring tests wait for them.
$(ALONE)/core-race.test $(ALONE)/core.test $(ALONE)/caddymodule-race.test $(ALONE)/packaging.test: FORCE
	$(if $(findstring /core,$@),,$(BACKGROUND)) $(GO) test -c $(if $(findstring -race.,$@),$(filter -race,$(TESTFLAGS))) $(TESTBUILD) -o $@ \
	  ./$(firstword $(subst -race, ,$(basename $(notdir $@))))

$(ALONE)/caddy: FORCE
	$(BACKGROUND) $(GO) build $(TESTBUILD) -o $@ ./cmd/xcaddy-build

# btest-telegraf, built once for the two packages whose tests run it
# (BTEST_TELEGRAF_BIN), static as the release builds it: its packages
# compile as the snapshot's linux/amd64 build compiles them, so after a
# change to core one of the two compiles what the other then reuses.
$(ALONE)/btest-telegraf: FORCE
	CGO_ENABLED=0 $(BACKGROUND) $(GO) build $(TESTBUILD) -o $@ ./cmd/btest-telegraf

# The tests that measure, one step after the other (the accuracy checks'
# CPU would be the shaped links' noise).
test-measured: $(ALONE)/core-race.test $(ALONE)/core.test
	$(RUN_ALONE)
	$(RUN_SHAPED)

test-core: $(ALONE)/core-race.test
	cd core && BTEST_E2E=1 BTEST_ALONE=later $(BACKGROUND) ../$< -test.timeout 45m -test.parallel 8
	@echo "ok  	github.com/btest-go/btest/core (the tests that measure: test-alone, test-shaped)"

# The tests that measure (measuresTiming in core): the loss relay's cases
# side by side (BTEST_ALONE=now), then the rate checks side by side, then
# the shaped links. Alone they need no more than make test gives them
# (test-measured). The relay's cases move up to 150 Mbit/s through Go
# code under -race, and pinned to one CPU the process has one P: beside
# them, TestUDPAdaptation's unlimited sender (which catches up at most
# 10 ms after a late wake-up) once sent a fifth under its rate for a
# second.
RUN_ALONE = cd core && BTEST_E2E=1 BTEST_ALONE=now $(MEASURE) ../$(ALONE)/core-race.test -test.timeout 10m -test.parallel 8 \
	  -test.run '^TestUDPLossRelay$$' && \
	BTEST_E2E=1 BTEST_ALONE=now $(MEASURE) ../$(ALONE)/core-race.test -test.timeout 10m -test.parallel 8 \
	  -test.run '^(TestTCPSpeedLimit|TestUDPRateLimit|TestUDPAdaptation)$$'
test-alone: $(ALONE)/core-race.test
	$(RUN_ALONE)

# The shaped cases one at a time (BTEST_SHAPED_SERIAL): side by side they
# take a third of the time, but the measuring tests are not what make test
# waits for, and one at a time their real-time peers take one CPU at most
# from the rest of the suite and none from each other.
RUN_SHAPED = cd core && BTEST_E2E=1 BTEST_SHAPED_SERIAL=1 $(MEASURE) ../$(ALONE)/core.test -test.timeout 10m -test.parallel 8 -test.run '^TestUDPShaped$$'
test-shaped: $(ALONE)/core.test
	$(RUN_SHAPED)

test-caddy: $(ALONE)/caddymodule-race.test $(ALONE)/caddy
	cd caddymodule && BTEST_E2E=1 BTEST_CADDY=$(abspath $(ALONE)/caddy) $(BACKGROUND) ../$< -test.timeout 45m -test.parallel 8
	@echo "ok  	github.com/btest-go/btest/caddymodule"

# The longest packages first: go test starts them in the order given.
SLOWPKGS := ./telegrafinput ./dashboard ./cmd/btest
test-packages: $(ALONE)/btest-telegraf
	BTEST_E2E=1 BTEST_TELEGRAF_BIN=$(abspath $(ALONE)/btest-telegraf) $(BACKGROUND) $(GO) test $(TESTFLAGS) -timeout 45m $(SLOWPKGS) \
	  $$($(GO) list ./... | grep -v -e '/core$$' -e '/caddymodule$$' -e '/packaging$$' $(patsubst ./%,-e '/%$$',$(SLOWPKGS) $(NORACEPKGS)))

# Packages whose code one goroutine owns, tested without -race: the EC-SRP5
# arithmetic shares nothing but a sync.OnceValue, the race detector has
# nothing to watch there and multiplied its tests' CPU eightfold (a twelfth
# of make test's), and core's tests run its handshakes concurrently under
# -race.
NORACEPKGS := ./core/ecsrp5
test-norace:
	BTEST_E2E=1 $(BACKGROUND) $(GO) test $(filter-out -race,$(TESTFLAGS)) -timeout 45m $(NORACEPKGS)

# The release tests check a snapshot of the tree as it is. make builds it
# first, beside the test binaries, unless dist/ already holds a snapshot of
# HEAD and no tracked file has changed, and tells the tests it is current.
# TestCrossTargets (go vet for the release's targets, test-cross) runs
# after the snapshot, beside the release tests: vet type-checks each
# package against its imports compiled for the target, and the snapshot
# has just compiled them with the same flags. Beside it, after a change
# to core, both compiled core and what imports it for the same six
# targets (a cold make test spent 42 CPU-s in it, 12 warm).
test-release: release-snapshot $(ALONE)/packaging.test
	cd packaging && BTEST_E2E=1 BTEST_DIST_CURRENT=1 $(BACKGROUND) ../$(ALONE)/packaging.test -test.timeout 45m -test.parallel 8 \
	  $(if $(findstring test-cross,$(MAKECMDGOALS)),-test.skip '^TestCrossTargets$$')
	@echo "ok  	github.com/btest-go/btest/packaging"

test-cross: release-snapshot $(ALONE)/packaging.test
	cd packaging && BTEST_E2E=1 $(BACKGROUND) ../$(ALONE)/packaging.test -test.timeout 45m -test.run '^TestCrossTargets$$'

release-snapshot:
	@if git diff --quiet HEAD 2>/dev/null && test -f dist/checksums.txt && \
	  grep -qs '"commit":"'"$$(git rev-parse HEAD)"'"' dist/metadata.json; then \
	  echo "dist/ is a snapshot of HEAD"; \
	else \
	  echo "make release (log: $(ALONE)/release.log)"; mkdir -p $(ALONE); \
	  $(BACKGROUND) $(MAKE) --no-print-directory release > $(ALONE)/release.log 2>&1 || { cat $(ALONE)/release.log; exit 1; }; \
	fi

# The README's dashboard picture, from the browser test (chromium).
screenshot:
	bash scripts/install-chromium.sh
	BTEST_E2E=1 BTEST_UPDATE_SCREENSHOT=1 $(GO) test -count=1 -run '^TestDashboardBrowser$$' ./caddymodule

test-deps:
	bash scripts/install-test-deps.sh

# A quick loop for development: no installs, end-to-end tests skip when
# their parts are missing, long tests shortened.
test-short:
	$(GO) test -short -count=1 ./...

# Our engine beside iperf3 on loopback, same run; prints ratios.
# IPERF3=/path/to/iperf3 compares with another iperf3 (3.20+ adds --gsro to
# the UDP GSO/GRO cases); the default is Debian's, installed when missing.
IPERF3    ?= iperf3
bench: btest
	@test "$(IPERF3)" != iperf3 || command -v iperf3 >/dev/null || (apt-get update -qq && apt-get install -y -qq iperf3)
	$(GO) run ./cmd/btest-bench -btest ./$(BIN)/btest -iperf3 $(IPERF3)
	$(GO) test -run '^$$' -bench 'UDPStability' -benchtime 1x ./core

# Every fuzz target for FUZZTIME each.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list 'Fuzz.*' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

tools:
	@test -x $(GOBIN)/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: tools
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GOBIN)/staticcheck ./...

# A snapshot release, offline, into dist/: every archive (linux amd64, arm64,
# armv7, mips/mipsle softfloat; windows, darwin amd64/arm64; freebsd amd64),
# checksums.txt and the .deb/.rpm. Installs GoReleaser on first use (cached).
# GoReleaser reads the commit only after it read a remote URL; a clone
# without a remote (CI's) gets the project's URL from the environment.
GORELEASER_SKIP := docker,publish,sign,announce,sbom,validate
ifeq ($(origin GORELEASER_GIT),undefined)
export GORELEASER_GIT := $(if $(shell git remote 2>/dev/null),,GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=remote.origin.url GIT_CONFIG_VALUE_0=https://github.com/btest-go/btest.git)
endif
release:
	@bash scripts/install-goreleaser.sh >/dev/null
	$(GORELEASER_GIT) $(GOBIN)/goreleaser release --snapshot --clean --skip=$(GORELEASER_SKIP)

clean:
	rm -rf $(BIN) dist
