# netwarden: two commands do all set-up on a fresh Debian 12 / Ubuntu machine.
#   make run    build and start the desktop app (demo capture when it cannot capture live)
#   make test   install what the tests need, then fmt check, clippy -D warnings and every test
SHELL := /bin/bash
CARGO ?= cargo
BIN := target/release/netwarden

# System packages: libpcap for capture, GTK for file dialogs, X11/Mesa for the window, iptables/ipset/iproute2
# for kernel enforcement and the namespace tests, Xvfb/xdotool/imagemagick for headless screenshots,
# lintian/systemd (systemd-analyze)/man-db for checking the Debian package, prometheus for promtool (tests
# check docs/pipelines.md's scrape job and alert rules with it), tcpreplay for the live capture test and bench
# (a capture sent at a set rate into a veth pair).
PACKAGES := build-essential pkg-config libpcap-dev libgtk-3-dev libxkbcommon-x11-0 libx11-xcb1 libxcursor1 \
	libxrandr2 libxi6 libegl1 libgl1-mesa-dri mesa-vulkan-drivers iptables ipset iproute2 iputils-ping \
	python3 tcpdump time xvfb xauth xdotool imagemagick libcap2-bin lintian systemd man-db prometheus tcpreplay \
	python3-pyatspi at-spi2-core dbus-daemon

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# `make deb` packages a release build. `make test` packages the binary its tests already built
# (DEB_PROFILE=dev): the checks are about the package, not the optimiser, and a release build would add
# 15-25 minutes to CI on two cores.
DEB_PROFILE ?= release
DEB_BIN := target/$(if $(filter dev,$(DEB_PROFILE)),debug,$(DEB_PROFILE))/netwarden
CARGO_DEB_VERSION := 3.8.0

.PHONY: deps build run demo test lint unit a11y root-tests bench bench-gui screenshots clean-kernel deb cargo-deb test-deb

deps:
	@missing=$$(for p in $(PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:" $$missing; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

build: deps
	$(CARGO) build --release --locked

# Grants the binary capture, firewall and attribution capabilities once (sudo asks for your password), so the
# window runs as you and not as root: CAP_SYS_PTRACE lets it name other users' programs (README: Privileges).
# The binary is first made mode 0750: with the capabilities it is a firewall administrator, so other users of
# the machine must not run it. Falls back to demo mode when capture is still impossible. Also creates
# /var/lib/netwarden (group: yours, setgid) when missing, so the app and `sudo netwarden block` share one
# block list and lock instead of fighting over the kernel's sets.
run: build
	@if [ "$$(id -u)" != 0 ]; then chmod 0750 $(BIN) && $(SUDO) setcap cap_net_raw,cap_net_admin,cap_sys_ptrace+eip $(BIN) || \
		echo "setcap failed: the app will start in demo mode (see README: Privileges)"; \
		[ -d /var/lib/netwarden ] || $(SUDO) install -d -m 2770 -g "$$(id -g)" /var/lib/netwarden || true; fi
	$(BIN) gui --rules rules.ron

demo: build
	$(BIN) gui --rules rules.ron --demo

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

# As a normal user, tests that need root skip themselves and are listed in $(ROOT_TESTS); `root-tests` runs
# them (and the package's install checks) through one sudo, or reports them as skipped where there is no
# sudo. As root (CI) every test runs in the first pass.
ROOT_TESTS := target/root-tests.txt

unit: deps
	@rm -f $(ROOT_TESTS)
	NETWARDEN_ROOT_TESTS_FILE=$(CURDIR)/$(ROOT_TESTS) $(CARGO) test --locked --no-fail-fast

root-tests:
	@scripts/root-tests.sh $(ROOT_TESTS) $(if $(filter 0,$(shell id -u)),,$(wildcard target/debian/netwarden_*.deb))

# The window as a screen reader sees it: over AT-SPI under Xvfb (scripts/a11y-check.py), on the debug binary
# that `unit` built.
a11y: deps
	$(CARGO) build --locked
	scripts/a11y-check.py target/debug/netwarden

test: lint unit a11y test-deb root-tests

cargo-deb:
	@$(CARGO) deb --version >/dev/null 2>&1 || $(CARGO) install cargo-deb --locked --version $(CARGO_DEB_VERSION)

# target/debian/netwarden_VERSION_ARCH.deb: the binary, its privileged copy, man pages and completions written
# from the clap definitions, the desktop entry and icons, /etc/netwarden/rules.ron, the service.
deb: deps cargo-deb
	$(CARGO) build --locked --profile $(DEB_PROFILE)
	rm -rf target/pkg
	$(DEB_BIN) generate man target/pkg/man
	$(DEB_BIN) generate completions target/pkg/completions
	gzip -9n target/pkg/man/*.1
	rm -f target/debian/netwarden_*.deb
	$(CARGO) deb --no-build --locked --profile $(DEB_PROFILE) $(if $(filter dev,$(DEB_PROFILE)),--fast)

# Checks the package (contents, control fields, conffiles, maintainer scripts, lintian, the unit), then,
# as root, installs, checks and purges it (see scripts/test-deb.sh).
test-deb:
	$(MAKE) deb DEB_PROFILE=dev
	scripts/test-deb.sh target/debian/netwarden_*.deb

# The enforce and live benches need root (network namespaces); as a normal user the live bench says it was
# skipped. The live bench is built with the app, so it can measure the app capturing under Xvfb too.
bench: deps
	$(CARGO) bench --locked --no-default-features --bench replay
	$(CARGO) bench --locked --no-default-features --bench enforce
	$(CARGO) bench --locked --no-default-features --bench attrib
	$(CARGO) bench --locked --bench live
	$(CARGO) bench --locked --bench frame
	$(MAKE) bench-gui

# The desktop app under Xvfb (needs root for its network namespaces): CPU idle, in demo mode and at 50,000
# packets/s, table refreshes and click-to-screen latency. RENDERERS="glow wgpu" compares the renderers.
bench-gui: deps
	$(SUDO) env RUNS=$${RUNS:-3} RENDERERS="$${RENDERERS:-glow}" $(CARGO) bench --locked \
		$$([ "$${RENDERERS:-glow}" = glow ] || echo --features wgpu) --bench gui

screenshots: build
	scripts/screenshots.sh $(BIN)

# Removes every netwarden chain, jump and ipset from the kernel.
clean-kernel: build
	$(SUDO) $(BIN) flush
