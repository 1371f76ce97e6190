# The project's commands. `make demo` and `make test` are the two a new reader needs.

CARGO ?= cargo
PREFIX ?= /usr/local
# Where the installed binary lives; the units' ExecStart points there.
BINDIR ?= $(PREFIX)/bin
# The binary that generates the man pages and completions; tests/package.rs passes its own.
HACMP ?= target/release/hacmp
GENERATED := target/generated

.PHONY: all build deps original demo test lint bench bench-smoke install generated deb clean safety-report fuzz-config fuzz-pattern

all: build

build:
	$(CARGO) build --release

deps:
	@sh .ci/install-deps

# A real two-node failover on this machine, in the compat and then the safe profile, with both
# failover times side by side; ends by itself in about 70 s (at most 120 s).
demo: deps build
	bash examples/demo.sh $(HACMP)

# The bash original the tests and the safety report compare with (not part of this repository):
# HACMP_ORIGINAL, else ../shared/seed/heartbeat.sh, else upstream's at a pinned commit,
# downloaded and checked by SHA-256. Recorded in $(ORIGINAL), which tests/support reads.
ORIGINAL := target/original/path
original:
	@sh .ci/original

# Everything CI checks: formatting, lints, and every test. The original is found first, so that
# without it the run stops in seconds; --no-fail-fast so that one failure hides no other.
test: original deps lint
	$(CARGO) test --all-targets --no-fail-fast

# The safe profile's evidence, written to docs/safety.md: the scenario catalog on bash, compat,
# safe and mixed clusters; 5,050 runs of random fault schedules (1,000 on all-safe clusters, 50
# more on all five, 200 of clean host crashes, and 1,900 run both as drawn and protocol-aware);
# every fault kind at every protocol step of the base scenarios (hacmp::sim::explore); and the
# etcd backend's catalog with 1,200 random schedules over etcd (1,000 general, 200 of clean
# host crashes); and 1,400 random schedules over three heartbeat directories (1,000 general,
# 200 of data centres lost whole, 200 of a slow site and a data centre lost whole). Each
# --random-* option is a kind of src/sim/kinds.rs; its seeds follow those of the kind before.
safety-report: original build
	$(HACMP) parity --original "$$(cat $(ORIGINAL))" --safety --catalog tests/shell-parity/scenarios \
		--catalog tests/shell-parity/etcd-scenarios --seed 100001 \
		--random 1000 --random-all-ways 50 --random-crashes 200 --random-biased 1900 \
		--random-etcd 1000 --random-etcd-crashes 200 \
		--random-multisite 1000 --random-site-losses 200 --random-slow-sites 200 \
		--explore --report docs/safety.md

# Issue 5's benchmarks, hacmp next to heartbeat.sh on this machine, written to
# docs/benchmarks.md (about 14 minutes). BENCH_ARGS adds options, e.g. BENCH_ARGS='--seconds 600'.
bench: original deps
	$(CARGO) bench --bench benchmarks -- --write docs/benchmarks.md $(BENCH_ARGS)

# The same benchmarks in seconds, figures discarded; `make test` runs it through
# `cargo test --all-targets`, so it cannot rot.
bench-smoke: original deps
	$(CARGO) test --bench benchmarks

# Random variable files from both generators, each read by hacmp and sourced by bash under a
# systemd-like and a login-like environment: every file must read exactly as bash reads it or be
# refused. `make test` runs 400 of each; FUZZ_CASES sets how many here, FUZZ_SEED the first seed.
FUZZ_CASES ?= 10000
FUZZ_SEED ?= 1
fuzz-config:
	FUZZ_CASES=$(FUZZ_CASES) FUZZ_SEED=$(FUZZ_SEED) $(CARGO) test --test config_vs_bash \
		random_variable_files -- --nocapture --test-threads 1

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

# What an installation takes besides the binary: the man pages (hacmp.1 and one per subcommand)
# and shell completions, written by hacmp itself, and the units of compat/ with ExecStart at
# $(BINDIR)/hacmp.
generated:
	rm -rf $(GENERATED) && $(HACMP) generate-docs $(GENERATED)
	mkdir -p $(GENERATED)/systemd
	for unit in compat/*.service; do \
		sed 's|/usr/local/bin/hacmp|$(BINDIR)/hacmp|g' "$$unit" > $(GENERATED)/systemd/$${unit##*/} || exit 1; \
	done

# The binary, its man pages, shell completions, the example units, the reattach drop-in and docs/.
install: build
	$(MAKE) generated
	install -D -m 0755 $(HACMP) $(DESTDIR)$(BINDIR)/hacmp
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/doc/hacmp
	install -m 0644 $(GENERATED)/man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -D -m 0644 $(GENERATED)/completions/hacmp.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/hacmp
	install -D -m 0644 $(GENERATED)/completions/_hacmp $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_hacmp
	install -D -m 0644 $(GENERATED)/completions/hacmp.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/hacmp.fish
	install -m 0644 $(GENERATED)/systemd/*.service $(DESTDIR)$(PREFIX)/share/doc/hacmp/
	install -m 0644 compat/reattach.conf $(DESTDIR)$(PREFIX)/share/doc/hacmp/
	install -d $(DESTDIR)$(PREFIX)/share/doc/hacmp/docs
	install -m 0644 docs/*.md $(DESTDIR)$(PREFIX)/share/doc/hacmp/docs/

# The Debian package, target/debian/hacmp_VERSION_ARCH.deb (cargo-deb; the files it holds are
# listed in Cargo.toml under [package.metadata.deb]). `make deps` installs cargo-deb if missing.
deb: deps build
	$(MAKE) generated BINDIR=/usr/bin
	$(CARGO) deb --no-build

clean:
	$(CARGO) clean

# The pattern fuzzer at length: random patterns against random command lines of real processes,
# hacmp's /proc scan against procps `pgrep -f` in the C locale and C.UTF-8. FUZZ_CASES patterns
# (each in both locales); FUZZ_SEED repeats a run.
FUZZ_CASES ?= 10000
fuzz-pattern:
	FUZZ_CASES=$(FUZZ_CASES) $(CARGO) test --test pgrep_vs_procps random_patterns_match_as_pgrep_f_does -- --nocapture
