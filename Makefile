# The project's commands. `make demo` and `make test` are the two a new reader needs.

CARGO ?= cargo
PREFIX ?= /usr/local
HACMP := target/release/hacmp

.PHONY: all build deps demo test lint bench install clean

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

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

install: build
	install -D -m 0755 $(HACMP) $(DESTDIR)$(PREFIX)/bin/hacmp

clean:
	$(CARGO) clean
