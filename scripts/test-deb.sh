#!/usr/bin/env bash
# Checks the Debian package that `make deb` built.
#   scripts/test-deb.sh DEB            the package itself: file list, control fields, conffiles, maintainer
#                                      scripts (and the postinst when setcap fails), lintian, the unit
#                                      (systemd-analyze verify); then, as root, the install checks below
#   scripts/test-deb.sh --install DEB  as root only: dpkg -i, group, owner, mode and capabilities of the
#                                      privileged copy, --version, man -w, the installed unit, the privilege
#                                      model for real, then remove and purge inside a network namespace
#                                      this script creates (netwarden's chains and sets there are gone, and
#                                      every file of the package)
# As a normal user the install checks are left to the root pass of `make test` (scripts/root-tests.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

install_only=false
if [ "${1:-}" = --install ]; then
    install_only=true
    shift
fi
deb=${1:?usage: scripts/test-deb.sh [--install] target/debian/netwarden_VERSION_ARCH.deb}
[ -f "$deb" ] || { echo "test-deb: no package $deb (make deb)" >&2; exit 1; }
deb=$(realpath "$deb")

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
checks=0
fail() { echo "test-deb: FAILED: $*" >&2; exit 1; }
ok() { checks=$((checks + 1)); echo "test-deb: ok: $*"; }

work=$(mktemp -d)
ns=
installed=false
cleanup() {
    # A failed check must not leave the package installed (purged inside our namespace).
    if $installed && dpkg-query -W -f='${Status}' netwarden 2>/dev/null | grep -q 'ok installed'; then
        ip netns exec "$ns" dpkg --purge netwarden > /dev/null 2>&1 || true
    fi
    [ -n "$ns" ] && ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

static_checks() {
    [ "$(basename "$deb")" = "netwarden_${version}-1_${arch}.deb" ] || fail "file name $(basename "$deb")"
    ok "file name netwarden_${version}-1_${arch}.deb"

    dpkg-deb -c "$deb" | awk '{print $1, $2, $6}' > "$work/files"
    for path in ./usr/bin/netwarden ./usr/lib/netwarden/netwarden-priv ./etc/netwarden/rules.ron \
        ./etc/default/netwarden ./usr/lib/systemd/system/netwarden.service \
        ./usr/share/applications/netwarden.desktop ./usr/share/icons/hicolor/scalable/apps/netwarden.svg \
        ./usr/share/icons/hicolor/256x256/apps/netwarden.png ./usr/share/netwarden/demo.pcap \
        ./usr/share/man/man1/netwarden.1.gz ./usr/share/man/man1/netwarden-run.1.gz \
        ./usr/share/man/man1/netwarden-replay.1.gz ./usr/share/bash-completion/completions/netwarden \
        ./usr/share/zsh/vendor-completions/_netwarden ./usr/share/fish/vendor_completions.d/netwarden.fish \
        ./usr/share/doc/netwarden/copyright ./usr/share/doc/netwarden/changelog.Debian.gz; do
        grep -q " $path\$" "$work/files" || fail "missing $path in $(basename "$deb")"
    done
    ! grep -q 'netwarden-generate' "$work/files" || fail "a man page for the hidden generate command"
    # Nothing in the package is owned by anyone but root; modes as the postinst expects them.
    ! awk '$2 != "root/root" && $2 != "0/0"' "$work/files" | grep -q . || fail "files not owned by root"
    grep -q '^-rwxr-xr-x .* ./usr/bin/netwarden$' "$work/files" || fail "mode of /usr/bin/netwarden"
    ok "file list ($(wc -l < "$work/files") entries)"

    dpkg-deb -f "$deb" > "$work/control"
    grep -qx "Package: netwarden" "$work/control" || fail "Package field"
    grep -qx "Version: ${version}-1" "$work/control" || fail "Version field (Cargo.toml says $version)"
    grep -qx "Architecture: $arch" "$work/control" || fail "Architecture field"
    depends=$(sed -n 's/^Depends: //p' "$work/control")
    for dep in libpcap0.8 iptables ipset libgtk-3-0 libcap2-bin adduser; do
        [[ ", $depends," == *", $dep"[,\ ]* ]] || fail "Depends lacks $dep: $depends"
    done
    # Nothing needed only to build: headers, compilers, pkg-config.
    if grep -Eq -- '-dev\b|\b(cargo|rustc|gcc|pkg-config|build-essential)\b' <<< "$depends"; then
        fail "a build-only package in Depends: $depends"
    fi
    ok "control fields (Depends: $depends)"

    dpkg-deb -e "$deb" "$work/control.d"
    [ "$(sort "$work/control.d/conffiles")" = "$(printf '%s\n' /etc/default/netwarden /etc/netwarden/rules.ron)" ] \
        || fail "conffiles: $(cat "$work/control.d/conffiles")"
    dpkg-deb -x "$deb" "$work/root"
    cmp -s rules.ron "$work/root/etc/netwarden/rules.ron" || fail "/etc/netwarden/rules.ron is not the shipped rules.ron"
    ok "conffiles /etc/netwarden/rules.ron (the commented rules.ron) and /etc/default/netwarden"

    for script in postinst postrm; do
        [ -x "$work/control.d/$script" ] || fail "no executable $script"
        sh -n "$work/control.d/$script" || fail "$script: syntax"
    done
    grep -q 'addgroup --quiet --system netwarden' "$work/control.d/postinst" || fail "postinst: group"
    grep -q 'dpkg-statoverride --update --add root netwarden 0750' "$work/control.d/postinst" || fail "postinst: mode"
    grep -q 'setcap cap_net_raw,cap_net_admin,cap_sys_ptrace+eip' "$work/control.d/postinst" || fail "postinst: setcap"
    grep -q 'ipset destroy' "$work/control.d/postrm" && grep -q 'NETWARDEN' "$work/control.d/postrm" \
        || fail "postrm: kernel clean-up on purge"
    ok "maintainer scripts"

    # The postinst where setcap fails (no extended attributes): it says so and what to do, and the
    # installation goes on. Every command it runs is a stub that logs its arguments.
    # No group yet, no statoverride yet, setcap refused.
    mkdir "$work/stubs"
    stub() { # NAME EXIT-STATUS-SHELL-CODE
        printf '#!/bin/sh\necho "%s $*" >> "%s"\n%s\n' "$1" "$work/stub.log" "$2" > "$work/stubs/$1"
        chmod +x "$work/stubs/$1"
    }
    stub getent 'exit 2'
    stub dpkg-statoverride '[ "$1" != --list ]'
    stub setcap 'echo "Failed to set capabilities on file: Operation not supported" >&2; exit 1'
    for cmd in addgroup install deb-systemd-helper deb-systemd-invoke systemctl; do stub "$cmd" 'exit 0'; done
    PATH="$work/stubs:$PATH" sh "$work/control.d/postinst" configure 2> "$work/postinst.err" \
        || fail "postinst failed when setcap failed: $(cat "$work/postinst.err")"
    grep -q 'setcap failed on /usr/lib/netwarden/netwarden-priv' "$work/postinst.err" \
        && grep -q 'sudo setcap cap_net_raw,cap_net_admin,cap_sys_ptrace+eip /usr/lib/netwarden/netwarden-priv' "$work/postinst.err" \
        || fail "postinst does not explain a failed setcap: $(cat "$work/postinst.err")"
    grep -q '^addgroup --quiet --system netwarden$' "$work/stub.log" \
        && grep -q '^dpkg-statoverride --update --add root netwarden 0750 /usr/lib/netwarden/netwarden-priv$' "$work/stub.log" \
        || fail "postinst steps: $(cat "$work/stub.log")"
    ok "postinst explains a failed setcap and still succeeds"

    # Warnings lintian may give, each explained in README.md (Install); anything else fails.
    lintian --fail-on error,warning --suppress-tags initial-upload-closes-no-bugs "$deb" > "$work/lintian" 2>&1 \
        || fail "lintian: $(cat "$work/lintian")"
    ok "lintian: no errors, no unexplained warnings"

    # systemd-analyze verify against the package's own tree (the binary is there) plus this machine's
    # units; every complaint counts, also those it only prints.
    cp -an /usr/lib/systemd/system/. "$work/root/usr/lib/systemd/system/"
    systemd-analyze verify --man=no --root="$work/root" /usr/lib/systemd/system/netwarden.service \
        > "$work/verify" 2>&1 || fail "systemd-analyze verify: $(cat "$work/verify")"
    [ ! -s "$work/verify" ] || fail "systemd-analyze verify: $(cat "$work/verify")"
    ok "systemd-analyze verify netwarden.service"
}

install_checks() {
    [ "$(id -u)" = 0 ] || fail "--install needs root"
    if dpkg-query -W -f='${Status}' netwarden 2>/dev/null | grep -q 'install ok installed'; then
        fail "netwarden is already installed on this machine: this test would remove it (dpkg --purge netwarden first)"
    fi
    # Remove and purge run inside a namespace of our own, so only its kernel state is at stake.
    ns=nwdeb$$
    ip netns add "$ns"
    installed=true
    dpkg -i "$deb" > "$work/dpkg-i" 2>&1 || fail "dpkg -i: $(cat "$work/dpkg-i")"
    dpkg -L netwarden | sort > "$work/installed"
    ok "dpkg -i"

    getent group netwarden > /dev/null || fail "no group netwarden"
    [ "$(stat -c '%U:%G %a' /usr/lib/netwarden/netwarden-priv)" = "root:netwarden 750" ] \
        || fail "privileged copy: $(stat -c '%U:%G %a' /usr/lib/netwarden/netwarden-priv)"
    getcap /usr/lib/netwarden/netwarden-priv | grep -q 'cap_net_admin,cap_net_raw,cap_sys_ptrace=eip' \
        || fail "getcap: $(getcap /usr/lib/netwarden/netwarden-priv)"
    [ -z "$(getcap /usr/bin/netwarden)" ] || fail "/usr/bin/netwarden has capabilities: $(getcap /usr/bin/netwarden)"
    [ "$(stat -c '%a' /usr/bin/netwarden)" = 755 ] || fail "mode of /usr/bin/netwarden"
    # The host's one block list, shared by the service and the group's members.
    [ "$(stat -c '%U:%G %a' /var/lib/netwarden)" = "root:netwarden 2770" ] \
        || fail "state directory: $(stat -c '%U:%G %a' /var/lib/netwarden)"
    ok "group netwarden; netwarden-priv root:netwarden 0750 with cap_net_admin,cap_net_raw,cap_sys_ptrace; /usr/bin/netwarden without"

    [ "$(/usr/bin/netwarden --version)" = "netwarden $version" ] || fail "--version: $(/usr/bin/netwarden --version)"
    [ "$(man -w netwarden)" = /usr/share/man/man1/netwarden.1.gz ] || fail "man -w netwarden: $(man -w netwarden)"
    man -w netwarden-run > /dev/null || fail "man -w netwarden-run"
    systemd-analyze verify netwarden.service > "$work/verify" 2>&1 || fail "verify: $(cat "$work/verify")"
    [ ! -s "$work/verify" ] || fail "systemd-analyze verify (installed): $(cat "$work/verify")"
    ok "netwarden --version, man -w netwarden, systemd-analyze verify of the installed unit"

    # The installed privilege model: nobody outside the group is refused with the hint; a member (the
    # group given with setpriv, /etc/group untouched) goes through the privileged copy.
    chmod 0777 "$work"
    nobody() { # IN_GROUP ARGS...
        local groups=--clear-groups
        [ "$1" = yes ] && groups=--groups=$(getent group netwarden | cut -d: -f3)
        shift
        timeout 60 ip netns exec "$ns" setpriv --reuid=nobody --regid=nogroup "$groups" --inh-caps=-all -- \
            env PATH=/usr/local/bin:/usr/bin:/bin /usr/bin/netwarden "$@" --state-dir "$work/nobody"
    }
    mkdir -m 0777 "$work/nobody"
    if nobody no block 192.0.2.8 > "$work/out" 2>&1; then fail "a non-member could block: $(cat "$work/out")"; fi
    grep -q 'sudo usermod -aG netwarden' "$work/out" || fail "no group hint: $(cat "$work/out")"
    nobody yes block 192.0.2.8 > "$work/out" 2>&1 || fail "a member could not block: $(cat "$work/out")"
    ip netns exec "$ns" ipset list netwarden4 | grep -q '^192.0.2.8' || fail "the member's block is not in the kernel"
    ok "non-member refused with the group hint, member blocks through netwarden-priv"

    # The service's command line, with the defaults of /etc/default/netwarden, in the namespace: it starts,
    # enforces, stops cleanly on SIGTERM and, without --remove-on-exit, leaves the kernel rules in place.
    # (systemd itself is not PID 1 here: its sandbox options are checked by systemd-analyze verify only.)
    local cmd iface rules opts
    cmd=$(sed -n 's/^ExecStart=//p' /usr/lib/systemd/system/netwarden.service)
    iface=$(sed -n 's/^NETWARDEN_IFACE=//p' /etc/default/netwarden)
    rules=$(sed -n 's/^NETWARDEN_RULES=//p' /etc/default/netwarden)
    opts=$(sed -n 's/^NETWARDEN_OPTS=//p' /etc/default/netwarden)
    cmd=${cmd//'${NETWARDEN_IFACE}'/$iface}
    cmd=${cmd//'${NETWARDEN_RULES}'/$rules}
    cmd=${cmd//'$NETWARDEN_OPTS'/$opts}
    read -ra argv <<< "$cmd"
    [ "${argv[*]:0:5}" = "/usr/bin/netwarden run --iface any --enforce" ] || fail "ExecStart: $cmd"
    mkdir -p /var/lib/netwarden /var/log/netwarden
    ip netns exec "$ns" "${argv[@]}" > "$work/service.out" 2>&1 &
    local pid=$! waited=0
    # "capturing on" comes once the SIGTERM handler is in place.
    until grep -q 'netwarden: capturing on any' "$work/service.out"; do
        sleep 0.5
        waited=$((waited + 1))
        kill -0 "$pid" 2> /dev/null && [ "$waited" -lt 40 ] || fail "service command: $(cat "$work/service.out")"
    done
    kill -TERM "$pid"
    local status=0
    wait "$pid" || status=$?
    [ "$status" = 0 ] || fail "service command exited $status on SIGTERM: $(cat "$work/service.out")"
    ip netns exec "$ns" iptables-save | grep -q ':NETWARDEN-IN' || fail "SIGTERM removed the kernel rules unasked"
    ok "the unit's command (${argv[*]}) runs, stops cleanly on SIGTERM and keeps the kernel rules"

    # Kernel state for the purge to remove (IPv4 and IPv6 sets and chains), then remove and purge.
    ip netns exec "$ns" /usr/bin/netwarden block 2001:db8::9 --state-dir "$work/root-state" > /dev/null
    ip netns exec "$ns" iptables-save | grep -q NETWARDEN || fail "no chains to clean up"
    ip netns exec "$ns" dpkg --remove netwarden > "$work/dpkg-r" 2>&1 || fail "dpkg --remove: $(cat "$work/dpkg-r")"
    [ ! -e /usr/bin/netwarden ] && [ -e /etc/netwarden/rules.ron ] || fail "remove: binary kept or conffile lost"
    ip netns exec "$ns" dpkg --purge netwarden > "$work/dpkg-p" 2>&1 || fail "dpkg --purge: $(cat "$work/dpkg-p")"
    for tool in iptables-save ip6tables-save; do
        ! ip netns exec "$ns" "$tool" | grep -q NETWARDEN || fail "purge left chains ($tool)"
    done
    ! ip netns exec "$ns" ipset list -n | grep -q netwarden || fail "purge left ipset sets"
    while read -r path; do
        case $path in
            /. | /etc | /etc/default | /usr | /usr/bin | /usr/lib | /usr/share | /usr/share/* ) [ -d "$path" ] && continue ;;
            /usr/lib/systemd | /usr/lib/systemd/system ) continue ;;
        esac
        [ ! -e "$path" ] || fail "purge left $path"
    done < "$work/installed"
    for path in /etc/netwarden /usr/lib/netwarden /usr/share/netwarden /usr/share/doc/netwarden /var/lib/netwarden /var/log/netwarden; do
        [ ! -e "$path" ] || fail "purge left $path"
    done
    [ -z "$(dpkg-statoverride --list /usr/lib/netwarden/netwarden-priv)" ] || fail "purge left the statoverride"
    ok "remove keeps the conffiles; purge leaves no chains, sets, files or statoverride"
}

if $install_only; then
    install_checks
elif [ "$(id -u)" = 0 ]; then
    static_checks
    install_checks
else
    static_checks
    echo "test-deb: install, remove and purge need root: left to the root pass of make test"
fi
echo "test-deb: all $checks package checks passed"
