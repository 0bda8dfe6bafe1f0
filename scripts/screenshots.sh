#!/usr/bin/env bash
# Runs the real app under Xvfb in demo mode and writes a PNG of each panel to docs/.
# Usage: scripts/screenshots.sh [BINARY]   (default target/release/netwarden)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/netwarden}
for tool in xvfb-run import xdotool; do
    command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y xvfb xauth imagemagick xdotool" >&2; exit 1; }
done
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
chmod 700 "$XDG_RUNTIME_DIR"
# A private config dir, so remembered preferences do not change what the screenshots show.
export XDG_DATA_HOME=$(mktemp -d) XDG_CONFIG_HOME=$(mktemp -d)
mkdir -p docs
shoot() { # TAB WAIT
    local tab=$1 wait=$2
    xvfb-run -a -s '-screen 0 1400x900x24' bash -c '
        "$0" gui --demo --rules rules.ron --tab "$1" >/dev/null 2>&1 &
        app=$!
        sleep "$2"
        # Without a window manager the window keeps its requested size; make it fill the screen.
        win=$(xdotool search --name "^netwarden$" | head -1)
        if [ -n "$win" ]; then
            xdotool windowmove "$win" 0 0 windowsize "$win" 1400 900
            sleep 1.5
        fi
        import -window root "docs/$1.png"
        kill $app' "$BIN" "$tab" "$wait"
    echo "docs/$tab.png"
}
shoot traffic 12
# `--tab details` selects the first denied row as soon as one arrives.
shoot details 14
shoot rules 3
shoot log 20
shoot stats 50
shoot threats 50
shoot blocklist 3
