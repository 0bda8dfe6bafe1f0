#!/usr/bin/env bash
# The root pass of `make test` for a contributor who is not root.
#   scripts/root-tests.sh LIST [DEB]
# LIST holds the tests that skipped themselves for lack of root (`EXE<TAB>TEST` lines, written by
# tests/common/root.rs); DEB is the package whose install checks need root (scripts/test-deb.sh --install).
# They all run through ONE sudo (one password prompt). Without sudo they are reported as skipped, with the
# reason and their count, and `make test` still passes. As root (CI) there is nothing left to do: every test
# already ran in the first pass.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = --as-root ]; then
    shift
    list=$1 deb=${2:-}
    failed=0 ran=0
    # One run of each test binary, with its skipped tests named exactly.
    for exe in $(cut -f1 "$list" | sort -u); do
        mapfile -t names < <(awk -F'\t' -v exe="$exe" '$1 == exe { print $2 }' "$list" | sort -u)
        ran=$((ran + ${#names[@]}))
        "$exe" --exact "${names[@]}" || failed=$((failed + 1))
    done
    if [ -n "$deb" ]; then
        scripts/test-deb.sh --install "$deb" || failed=$((failed + 1))
    fi
    echo "root pass: $ran root-only tests${deb:+ and the package install checks}; $failed failing runs"
    [ "$failed" = 0 ]
    exit
fi

list=${1:?usage: scripts/root-tests.sh LIST [DEB]}
deb=${2:-}
[ "$(id -u)" = 0 ] && exit 0
count=0
[ -s "$list" ] && count=$(sort -u "$list" | wc -l)
[ "$count" = 0 ] && [ -z "$deb" ] && exit 0

skip() {
    echo "make test: SKIPPED $count root-only tests${deb:+ and the package install checks}: $1"
    [ "$count" = 0 ] || sort -u "$list" | awk -F'\t' '{ n = split($1, p, "/"); sub(/-[0-9a-f]+$/, "", p[n]); print "  " p[n] ": " $2 }'
    echo "  (they run as root in CI; run 'sudo make test' to run them here)"
    exit 0
}
command -v sudo > /dev/null || skip "sudo is not installed"
if ! sudo -n true 2> /dev/null; then
    [ -t 0 ] || skip "sudo needs a password and there is no terminal to ask on"
    echo "make test: $count tests${deb:+ and the package install checks} need root (network namespaces, setcap, dpkg -i); asking sudo once"
    sudo -v || skip "sudo refused"
fi
list=$(realpath "$list")
[ -n "$deb" ] && deb=$(realpath "$deb")
exec sudo -n "$0" --as-root "$list" $deb
