# The project's commands. `make demo` and `make test` are the two a new reader needs.

CARGO ?= cargo
PREFIX ?= /usr/local
HACMP := target/release/hacmp

.PHONY: all build deps demo test lint bench bench-smoke install clean safety-report fuzz-pattern

all: build

build:
	$(CARGO) build --release

deps:
	@sh .ci/install-deps

# A real two-node failover on this machine; ends by itself in about a minute.
demo: deps build
	bash examples/demo.sh $(HACMP)

# Everything CI checks: formatting, lints, and every test.
test: deps lint
	$(CARGO) test --all-targets

# The safe profile's evidence, written to docs/safety.md: the scenario catalog on bash, compat,
# safe and mixed clusters, 1,050 random fault schedules (50 of them on all five clusters) and
# 200 of clean host crashes. The runs take about 65 s on 2 cores, after the release build.
safety-report: build
	$(HACMP) parity --safety --catalog tests/shell-parity/scenarios --seed 100001 \
		--random 1000 --random-all-ways 50 --random-crashes 200 --report docs/safety.md

# Issue 5's benchmarks, hacmp next to heartbeat.sh on this machine, written to
# docs/benchmarks.md (about 8 minutes). BENCH_ARGS adds options, e.g. BENCH_ARGS='--seconds 600'.
bench: deps
	$(CARGO) bench --bench benchmarks -- --write docs/benchmarks.md $(BENCH_ARGS)

# The same benchmarks in seconds, figures discarded; `make test` runs it through
# `cargo test --all-targets`, so it cannot rot.
bench-smoke: deps
	$(CARGO) test --bench benchmarks

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

# The binary, its man page, shell completions and the example unit.
install: build
	install -D -m 0755 $(HACMP) $(DESTDIR)$(PREFIX)/bin/hacmp
	rm -rf target/generated && $(HACMP) generate-docs target/generated
	install -D -m 0644 target/generated/hacmp.1 $(DESTDIR)$(PREFIX)/share/man/man1/hacmp.1
	install -D -m 0644 target/generated/completions/hacmp.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/hacmp
	install -D -m 0644 target/generated/completions/_hacmp $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_hacmp
	install -D -m 0644 target/generated/completions/hacmp.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/hacmp.fish
	install -D -m 0644 compat/hacmp.service $(DESTDIR)$(PREFIX)/share/doc/hacmp/hacmp.service

clean:
	$(CARGO) clean

# The pattern fuzzer at length: random patterns against random command lines of real processes,
# hacmp's /proc scan against procps `pgrep -f` in the C locale and C.UTF-8. FUZZ_CASES patterns
# (each in both locales); FUZZ_SEED repeats a run.
FUZZ_CASES ?= 10000
fuzz-pattern:
	FUZZ_CASES=$(FUZZ_CASES) $(CARGO) test --test pgrep_vs_procps random_patterns_match_as_pgrep_f_does -- --nocapture
