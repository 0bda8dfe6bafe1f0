# netwarden: two commands do all set-up on a fresh Debian 12 / Ubuntu machine.
#   make run    build and start the desktop app (demo capture when it cannot capture live)
#   make test   install what the tests need, then fmt check, clippy -D warnings and every test
SHELL := /bin/bash
CARGO ?= cargo
BIN := target/release/netwarden

# System packages: libpcap for capture, GTK for file dialogs, X11/Mesa for the window, iptables/ipset/iproute2
# for kernel enforcement and the namespace tests, Xvfb/xdotool/imagemagick for headless screenshots.
PACKAGES := build-essential pkg-config libpcap-dev libgtk-3-dev libxkbcommon-x11-0 libx11-xcb1 libxcursor1 \
	libxrandr2 libxi6 libegl1 libgl1-mesa-dri mesa-vulkan-drivers iptables ipset iproute2 iputils-ping \
	python3 tcpdump time xvfb xauth xdotool imagemagick libcap2-bin

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps build run demo test lint unit bench bench-gui screenshots clean-kernel

deps:
	@missing=$$(for p in $(PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:" $$missing; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

build: deps
	$(CARGO) build --release --locked

# Grants the binary capture and firewall capabilities once (sudo asks for your password), so the window runs
# as you and not as root. Falls back to demo mode when capture is still impossible.
run: build
	@if [ "$$(id -u)" != 0 ]; then $(SUDO) setcap cap_net_raw,cap_net_admin+eip $(BIN) || \
		echo "setcap failed: the app will start in demo mode (see README: Privileges)"; fi
	$(BIN) gui --rules rules.ron

demo: build
	$(BIN) gui --rules rules.ron --demo

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

unit: deps
	$(CARGO) test --locked --no-fail-fast

test: lint unit

bench: deps
	$(CARGO) bench --locked --no-default-features --bench replay
	$(CARGO) bench --locked --no-default-features --bench enforce
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
