#!/usr/bin/env bash
# Runs the real app under Xvfb in demo mode and writes a PNG of each panel to docs/. The connections view is
# shot from a live capture on loopback inside a private network namespace while a few programs talk, run by
# different users (root only; elsewhere from the demo, whose programs read "(offline)").
# Usage: [ONLY="tab ..."] scripts/screenshots.sh [BINARY]   (default target/release/netwarden)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-target/release/netwarden}")
DOCS=$PWD/docs
for tool in xvfb-run import xdotool; do
    command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y xvfb xauth imagemagick xdotool" >&2; exit 1; }
done
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
chmod 700 "$XDG_RUNTIME_DIR"
# A private config dir, so remembered preferences do not change what the screenshots show.
export XDG_DATA_HOME=$(mktemp -d) XDG_CONFIG_HOME=$(mktemp -d)
mkdir -p docs
# The app runs in a directory of its own with a copy of rules.ron: its audit log (log.path "firewall.log")
# is written there, and the Log tab never shows a firewall.log left in the checkout.
# assets/ is linked in, so the banner names the demo capture as before (assets/demo.pcap).
WORK=$(mktemp -d)
cp rules.ron "$WORK/"
ln -s "$PWD/assets" "$WORK/assets"
# A block list to show, in a private state directory; --no-enforce keeps the kernel untouched.
STATE=$(mktemp -d)
cat > "$STATE/blocklist.ron" <<'RON'
(version: 1, entries: [
    (net: "203.0.113.7/32", reason: "ssh brute force (threats view)", added: "2025-11-25T06:00:30Z", expires: Some("2035-11-25T07:00:30Z"), state: NotEnforced),
    (net: "198.51.100.0/24", reason: "port scans from this network", added: "2025-11-25T06:00:21Z", expires: None, state: NotEnforced),
    (net: "2001:db8:bad::/48", reason: "imported from a feed", added: "2025-11-25T05:59:00Z", expires: None, state: NotEnforced),
])
RON
# The block list is shown enforced for real, inside a private network namespace (root only); elsewhere
# the app runs with --no-enforce so the host's firewall is never touched.
NETNS=()
ENFORCE=--no-enforce
trap 'rm -rf "$WORK"' EXIT
if [ "$(id -u)" = 0 ] && command -v iptables >/dev/null && command -v ipset >/dev/null; then
    ns=nwshot$$
    ip netns add "$ns"
    trap 'ip netns del "$ns" 2>/dev/null || true; rm -rf "$WORK"' EXIT
    NETNS=(ip netns exec "$ns")
    ENFORCE=--remove-on-exit
    # One lifted ban for the history view.
    "${NETNS[@]}" "$BIN" block 192.0.2.99 --reason "tried the admin page" --state-dir "$STATE" >/dev/null
    "${NETNS[@]}" "$BIN" unblock 192.0.2.99 --state-dir "$STATE" >/dev/null
fi
shoot() { # TAB WAIT [CLICK_Y]
    local tab=$1 wait=$2 click=${3:-}
    # ONLY="blocklist rules" limits the run to some tabs.
    if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $tab "* ]]; then return; fi
    NW_WRAP="${NETNS[*]}" NW_ENFORCE=$ENFORCE xvfb-run -a -s '-screen 0 1400x900x24' bash -c '
        cd "$5"
        $NW_WRAP "$0" gui --demo $NW_ENFORCE --state-dir "$4" --rules rules.ron --tab "$1" >/dev/null 2>&1 &
        app=$!
        sleep "$2"
        if [ -n "${3:-}" ]; then
            # Pause first (Space): rows that move every frame do not take clicks (a known issue). Without a
            # window manager nothing has the keyboard focus until it is given.
            xdotool search --name "^netwarden$" windowfocus --sync >/dev/null 2>&1 || true
            xdotool key space
            sleep 0.5
            xdotool mousemove 400 "$3"
            sleep 0.4
            xdotool click 1
            sleep 1.5
        fi
        import -window root "$6/$1.png"
        kill $app' "$BIN" "$tab" "$wait" "$click" "$STATE" "$WORK" "$DOCS"
    echo "docs/$tab.png"
}
shoot_connections() {
    if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" connections "* ]]; then return; fi
    local py
    py=$(command -v /usr/bin/python3 || command -v python3 || true)
    if [ ${#NETNS[@]} = 0 ] || [ -z "$py" ] || ! command -v setpriv >/dev/null || ! command -v curl >/dev/null; then
        shoot connections 20
        return
    fi
    "${NETNS[@]}" ip link set lo up
    # Servers: a web server run by nobody, a UDP sink run by daemon.
    "${NETNS[@]}" setpriv --reuid=65534 --regid=65534 --clear-groups "$py" -m http.server 8080 \
        --bind 127.0.0.1 --directory "$PWD/docs" >/dev/null 2>&1 &
    local web=$!
    "${NETNS[@]}" setpriv --reuid=1 --regid=1 --clear-groups "$py" -c '
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("::1", 5353))
while True:
    s.recvfrom(2048)' >/dev/null 2>&1 &
    local sink=$!
    NW_WRAP="${NETNS[*]}" NW_ENFORCE=$ENFORCE NW_PY=$py xvfb-run -a -s '-screen 0 1400x900x24' bash -c '
        cd "$2"
        $NW_WRAP "$0" gui --iface lo $NW_ENFORCE --state-dir "$1" --rules rules.ron --tab connections >/dev/null 2>&1 &
        app=$!
        sleep 5
        for i in 1 2 3; do
            $NW_WRAP curl -s -o /dev/null http://127.0.0.1:8080/ &
            $NW_WRAP setpriv --reuid=65534 --regid=65534 --clear-groups curl -s -o /dev/null http://127.0.0.1:8080/traffic.png &
            $NW_WRAP setpriv --reuid=1 --regid=1 --clear-groups bash -c "exec 3<>/dev/udp/::1/5353; echo hello >&3; read -t 20 <&3" &
            $NW_WRAP setpriv --reuid=65534 --regid=65534 --clear-groups "$NW_PY" -c "import socket, time
s = socket.create_connection((\"127.0.0.1\", 8080)); s.sendall(b\"GET / HTTP/1.0\\r\\n\\r\\n\"); time.sleep(30)" &
            # A closed port: the kernel answers with a reset before anyone could look the client up.
            [ $i = 1 ] && $NW_WRAP bash -c "exec 3<>/dev/tcp/127.0.0.1/22" 2>/dev/null &
            sleep 1
        done
        sleep 8
        import -window root "$3/connections.png"
        kill $app' "$BIN" "$STATE" "$WORK" "$DOCS"
    kill "$web" "$sink" 2>/dev/null || true
    echo "docs/connections.png"
}
shoot traffic 12
shoot_connections
shoot details 12 300
shoot rules 3
shoot blocklist 3
shoot log 20
shoot stats 50
shoot threats 50
