#!/usr/bin/python3
"""Checks the desktop app the way a screen reader sees it: over AT-SPI, under Xvfb.

Starts, in a temporary directory, an X server (Xvfb), a private D-Bus session with the accessibility bus
enabled (org.a11y.Status IsEnabled, set before the app starts, as Orca does), and
`netwarden gui --demo` on a small capture of its own (no kernel, no /var/lib: --state-dir and --rules in the
temporary directory). Then, with pyatspi (python3-pyatspi), as a screen reader would:

- the window is a frame named "netwarden"; the tabs and buttons are found by name;
- Block list: typing an address into "Address or CIDR:" (EditableText) and pressing "Add to block list"
  (Action) gives a button "Unblock 203.0.113.7/32"; each "Browse" button names its field;
- Rules: each rule's buttons carry its name ("Delete rule no ssh"), its checkbox too ("Enabled: no ssh");
- Traffic: pressing "Pause" leaves a Table named "Traffic: N packets shown" whose rows are table rows named
  by a sentence ("in tcp 203.0.113.7 port 30001 to 192.168.1.50 port 22, block, rule no ssh").

Tabs and buttons are pressed through AT-SPI actions, so the check also shows that requests from AT-SPI wake
the app when it is idle and draws nothing.

Usage: scripts/a11y-check.py [BINARY]   (default target/debug/netwarden; run from the source checkout)
Needs: xvfb, dbus (dbus-daemon), at-spi2-core, python3-pyatspi; /usr/bin/python3 because pyatspi is a
Debian package (not in a virtualenv or pyenv Python). Exit status 0 when every check passes, 1 otherwise.
"""
import os
import socket
import shutil
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_demo_pcap import MAC_HOST, MAC_ROUTER, T0, eth, ip4, tcp  # noqa: E402  (the demo's frame builders)

# How long one condition may take to hold (the app draws at most every 250 ms while traffic arrives; a debug
# build under Xvfb is slow).
WAIT_S = 30.0
APP_NAME = "netwarden"


def pcap(path):
    """Writes a small Ethernet capture: an SSH attempt from 203.0.113.7 (blocked by rules.ron's "no ssh") and
    an HTTPS exchange with 93.184.215.14, seen from 192.168.1.50 as the demo is. Demo mode replays it in a
    loop; gaps over 2 s are shortened to 2 s, so a few rows arrive every 2 s."""

    def frame(src, dst, sport, dport, flags):
        ip = ip4(socket.inet_aton(src), socket.inet_aton(dst), 6, tcp(sport, dport, flags, seq=1))
        return eth(MAC_HOST, MAC_ROUTER, 0x0800, ip)

    packets = [
        (0.0, frame("203.0.113.7", "192.168.1.50", 30001, 22, 0x02)),
        (0.1, frame("192.168.1.50", "93.184.215.14", 50010, 443, 0x02)),
        (0.2, frame("93.184.215.14", "192.168.1.50", 443, 50010, 0x12)),
        (3.0, frame("192.168.1.50", "93.184.215.14", 50010, 443, 0x10)),
    ]
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for offset, data in packets:
            sec, usec = T0 + int(offset), int(round((offset % 1) * 1e6))
            f.write(struct.pack("<IIII", sec, usec, len(data), len(data)) + data)


class Session:
    """Xvfb, a private D-Bus session bus (which starts the accessibility bus on demand) and the app, all
    stopped by `close` (also when a check fails)."""

    def __init__(self, binary):
        self.dir = tempfile.mkdtemp(prefix="netwarden-a11y-")
        self.procs = []
        env = dict(os.environ)
        for name in ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR"):
            path = os.path.join(self.dir, name.lower())
            os.makedirs(path, mode=0o700)
            env[name] = path
        # The accessibility bus launcher keeps IsEnabled in GSettings: in memory here, not in the user's dconf.
        env["GSETTINGS_BACKEND"] = "memory"
        env.pop("WAYLAND_DISPLAY", None)
        env.pop("AT_SPI_BUS_ADDRESS", None)
        env["DISPLAY"] = self._xvfb(env)
        env["DBUS_SESSION_BUS_ADDRESS"] = self._dbus(env)
        self.env = env
        os.environ.update(env)
        self._enable_accessibility()

        self.state = os.path.join(self.dir, "state")
        os.makedirs(self.state)
        self.rules = os.path.join(self.dir, "rules.ron")
        shutil.copy("rules.ron", self.rules)
        demo = os.path.join(self.dir, "a11y.pcap")
        pcap(demo)
        self.log = os.path.join(self.dir, "app.log")
        # One line per frame drawn (src/ui/framelog.rs): shows when the app is idle.
        self.frames = os.path.join(self.dir, "frames.log")
        env["NETWARDEN_FRAME_LOG"] = self.frames
        with open(self.log, "wb") as log:
            self.app = self._spawn(
                [binary, "gui", "--demo", "--demo-file", demo, "--state-dir", self.state, "--rules", self.rules,
                 "--tab", "blocklist"],
                env, stdout=log, stderr=subprocess.STDOUT)

    def _spawn(self, argv, env, **kwargs):
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, **kwargs)
        self.procs.append(proc)
        return proc

    def _first_line(self, argv, env, what):
        """Starts a server that writes one line (its display or address) to the file descriptor that
        `argv` names with "{fd}", and returns that line."""
        read, write = os.pipe()
        self._spawn([arg.replace("{fd}", str(write)) for arg in argv], env, pass_fds=(write,),
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(write)
        with os.fdopen(read) as f:
            line = f.readline().strip()
        if not line:
            raise RuntimeError(f"{what} did not start")
        return line

    def _xvfb(self, env):
        """Starts Xvfb on a free display; returns ":N"."""
        return ":" + self._first_line(
            ["Xvfb", "-displayfd", "{fd}", "-screen", "0", "1400x900x24", "-nolisten", "tcp"], env, "Xvfb")

    def _dbus(self, env):
        """Starts a session bus with the system's session configuration (so org.a11y.Bus is activated on
        demand); returns its address."""
        return self._first_line(
            ["dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address={fd}"], env, "dbus-daemon")

    def _enable_accessibility(self):
        """Sets org.a11y.Status IsEnabled (this starts at-spi-bus-launcher), as a screen reader does."""
        subprocess.run(["busctl", "--user", "set-property", "org.a11y.Bus", "/org/a11y/bus", "org.a11y.Status",
                        "IsEnabled", "b", "true"], env=self.env, check=True, timeout=30)

    def frame_tabs(self):
        """The tab of each frame the app drew so far."""
        try:
            with open(self.frames, errors="replace") as f:
                return [line.split(maxsplit=3)[3].strip() for line in f
                        if line.startswith("frame ") and len(line.split()) > 3]
        except FileNotFoundError:
            return []

    def app_log(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def close(self):
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Checker:
    """The checks, over pyatspi (imported once the session bus exists)."""

    def __init__(self, session):
        import gi

        gi.require_version("Atspi", "2.0")
        import pyatspi
        from gi.repository import Atspi

        self.session = session
        self.pyatspi = pyatspi
        self.atspi = Atspi
        self.failures = []

    def fail(self, what):
        print("FAIL:", what)
        self.failures.append(what)

    def ok(self, what):
        print("ok:  ", what)

    def wait(self, what, probe, timeout=WAIT_S):
        """Polls `probe` until it returns something true; None (and a failure) after `timeout`. A probe that
        raises (the app did not answer, a node went away) counts as not yet."""
        deadline = time.monotonic() + timeout
        last_error = None
        while time.monotonic() < deadline:
            if self.session.app.poll() is not None:
                self.fail(f"{what}: the app exited with status {self.session.app.returncode}")
                return None
            try:
                result = probe()
                if result:
                    return result
            except Exception as error:  # GLib.Error from libatspi: no reply, unknown object
                last_error = error
            time.sleep(0.3)
        self.fail(f"{what}: not within {timeout:.0f} s" + (f" (last error: {last_error})" if last_error else ""))
        return None

    def application(self):
        desktop = self.pyatspi.Registry.getDesktop(0)
        for index in range(desktop.childCount):
            app = desktop.getChildAtIndex(index)
            if app is not None and app.name == APP_NAME:
                # No client-side cache: every question goes to the app, as the check is about what it answers.
                app.set_cache_mask(self.atspi.Cache.NONE)
                return app
        return None

    def nodes(self, root, max_nodes=5000):
        """Every node under `root` (depth first), as (role name, name, accessible)."""
        found, stack = [], [root]
        while stack and len(found) < max_nodes:
            node = stack.pop()
            for index in reversed(range(node.childCount)):
                child = node.getChildAtIndex(index)
                if child is None:
                    continue
                found.append((child.getRoleName(), child.name, child))
                stack.append(child)
        return found

    def find(self, app, role, name):
        for node_role, node_name, node in self.nodes(app):
            if node_role == role and (node_name == name if isinstance(name, str) else name(node_name)):
                return node
        return None

    def press(self, app, role, name):
        """Finds a control by role and name and runs its first action (a click) over AT-SPI."""

        def probe():
            node = self.find(app, role, name)
            if node is None:
                return False
            action = node.queryAction()
            return action.nActions > 0 and action.doAction(0)

        if self.wait(f"{role} {name!r} is found and pressed", probe):
            self.ok(f"pressed {role} {name!r} over AT-SPI")
            return True
        return False

    def named_controls(self, app, tab):
        """Every control on the tab shown has a name (a screen reader says nothing for one without)."""
        roles = ("push button", "toggle button", "check box", "radio button", "entry", "combo box", "slider",
                 "spin button", "table", "table row", "image", "menu item")

        def probe():
            nodes = [(role, name) for role, name, _ in self.nodes(app) if role in roles]
            return nodes if nodes else None

        nodes = self.wait(f"the controls of the {tab} tab", probe)
        if nodes is None:
            return
        unnamed = [role for role, name in nodes if not name.strip()]
        if unnamed:
            self.fail(f"{tab} tab: {len(unnamed)} of {len(nodes)} controls have no name: {unnamed}")
        else:
            self.ok(f"{tab} tab: all {len(nodes)} controls have names")

    def run(self):
        app = self.wait("the app registers on the accessibility bus", self.application)
        if app is None:
            return
        frame = self.wait("the app has its window", lambda: app.childCount > 0 and app.getChildAtIndex(0))
        if frame is None:
            return
        if frame.getRoleName() == "frame" and frame.name == "netwarden":
            self.ok("the window is a frame named 'netwarden'")
        else:
            self.fail(f"the window is {frame.getRoleName()} {frame.name!r}, not a frame named 'netwarden'")

        for tab in ("Traffic", "Connections", "Rules", "Block list", "Log", "Stats", "Threats"):
            if self.wait(f"tab {tab!r}", lambda tab=tab: self.find(app, "toggle button", tab), timeout=5):
                self.ok(f"tab {tab!r} is a toggle button found by name")

        self.check_blocklist(app)
        self.check_rules(app)
        self.check_traffic(app)
        self.check_connections(app)
        self.check_stats(app)
        self.check_idle(app)

    def check_blocklist(self, app):
        field = self.wait("the 'Address or CIDR:' field", lambda: self.find(app, "entry", "Address or CIDR:"))
        if field is None:
            return
        if not field.queryEditableText().setTextContents("203.0.113.7"):
            self.fail("the address field refused its text")
            return
        # The text reaches the field in the app's next frame; the button then adds it.
        if not self.wait("the address field shows the typed address",
                         lambda: field.queryText().getText(0, -1) == "203.0.113.7"):
            return
        self.ok("typed 203.0.113.7 into 'Address or CIDR:' over AT-SPI")
        if not self.press(app, "push button", "Add to block list"):
            return
        if self.wait("button 'Unblock 203.0.113.7/32'",
                     lambda: self.find(app, "push button", "Unblock 203.0.113.7/32")):
            self.ok("the new entry's button is named 'Unblock 203.0.113.7/32'")
        self.named_controls(app, "Block list")
        browse = [name for role, name, _ in self.nodes(app) if role == "push button" and name.startswith("Browse")]
        if len(browse) >= 3 and len(set(browse)) == len(browse) and all(": " in name for name in browse):
            self.ok(f"each Browse button names its field: {browse}")
        else:
            self.fail(f"Browse buttons do not each name their field: {browse}")

    def check_rules(self, app):
        if not self.press(app, "toggle button", "Rules"):
            return
        names = [f"{verb} rule no ssh" for verb in ("Move up", "Move down", "Edit", "Duplicate", "Delete")]
        for name in names:
            if self.wait(f"button {name!r}", lambda name=name: self.find(app, "push button", name)):
                self.ok(f"button {name!r} is found by name")
        if self.wait("checkbox 'Enabled: no ssh'", lambda: self.find(app, "check box", "Enabled: no ssh")):
            self.ok("checkbox 'Enabled: no ssh' is found by name")
        self.named_controls(app, "Rules")

    def check_traffic(self, app):
        if not self.press(app, "toggle button", "Traffic"):
            return
        # Following live, the rows move; paused, they stay for the screen reader to read.
        if not self.press(app, "push button", "Pause"):
            return
        if not self.wait("the view pauses ('Jump to live' appears)",
                         lambda: self.find(app, "push button", lambda n: n.startswith("Jump to live"))):
            return
        self.ok("the view is paused ('Jump to live' shows)")
        table = self.wait("the traffic table", lambda: self.find(app, "table", lambda n: n.startswith("Traffic: ")))
        if table is None:
            return
        self.ok(f"the traffic table is a Table named {table.name!r}")
        expected = "in tcp 203.0.113.7 port 30001 to 192.168.1.50 port 22, block, rule no ssh"

        def rows():
            found = [(role, name) for role, name, _ in self.nodes(table) if role == "table row"]
            # A row may go on with the program that owns the flow (", program (offline)" in a replay).
            return found if any(name == expected or name.startswith(expected + ", ") for _, name in found) else None

        found = self.wait(f"a table row named {expected!r}", rows)
        if found:
            unnamed = [name for _, name in found if not name]
            self.ok(f"{len(found)} table rows named by a sentence, among them {expected!r}")
            if unnamed:
                self.fail(f"{len(unnamed)} of {len(found)} table rows have no name")
        self.named_controls(app, "Traffic")

    def check_connections(self, app):
        if not self.press(app, "toggle button", "Connections"):
            return
        table = self.wait("the connections table",
                          lambda: self.find(app, "table", lambda n: n.startswith("Connections: ")))
        if table is not None:
            self.ok(f"the connections table is a Table named {table.name!r}")
        self.named_controls(app, "Connections")

    def check_stats(self, app):
        if self.press(app, "toggle button", "Stats"):
            for plot in ("Packets per second: ", "Bytes per second: "):
                node = self.wait(f"the plot {plot!r}",
                                 lambda plot=plot: self.find(app, "image", lambda n: n.startswith(plot)))
                if node is not None:
                    self.ok(f"the plot is an image named by its summary: {node.name!r}")
            self.named_controls(app, "Stats")
        if self.press(app, "toggle button", "Threats"):
            self.named_controls(app, "Threats")

    def check_idle(self, app):
        """With capture stopped nothing changes, so the app draws nothing until asked (src/ui/app.rs,
        schedule_repaint); an action from AT-SPI must still wake it, and plain questions must be answered
        without a frame."""
        if not self.press(app, "push button", "Stop capture"):
            return

        def idle():
            before = len(self.session.frame_tabs())
            time.sleep(2)
            return len(self.session.frame_tabs()) == before

        if not self.wait("the app stops drawing (no frame for 2 s) once capture stops", idle):
            return
        frames = len(self.session.frame_tabs())
        if len(self.nodes(app)) > 0 and len(self.session.frame_tabs()) == frames:
            self.ok("the idle app answers a walk of its whole tree without drawing a frame")
        else:
            self.fail("walking the tree of the idle app drew frames or found nothing")
        if not self.press(app, "toggle button", "Log"):
            return
        if self.wait("the Log tab shows (button 'Reload log file')",
                     lambda: self.find(app, "push button", "Reload log file")):
            tabs = self.session.frame_tabs()[frames:]
            if tabs and tabs[-1] == "Log":
                self.ok(f"an AT-SPI action woke the idle app: {len(tabs)} frame(s) drawn, the last on the Log tab")
            else:
                self.fail(f"the frames drawn after the action were on tabs {tabs}, not ending on Log")


def main():
    binary = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/debug/netwarden")
    if not os.access(binary, os.X_OK):
        print(f"no binary at {binary} (cargo build first)", file=sys.stderr)
        return 2
    started = time.monotonic()
    session = Session(binary)
    try:
        checker = Checker(session)
        checker.run()
        failures = checker.failures
    finally:
        log = session.app_log()
        session.close()
    if failures:
        print(f"\n{len(failures)} check(s) failed; the app's output:\n{log}")
        return 1
    print(f"every accessibility check passed ({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
