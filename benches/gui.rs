//! The desktop app measured as a user runs it: the real window under Xvfb (Mesa software rendering, no
//! GPU), the real binary, CPU from /proc/PID/stat, and what reaches the screen read from Xvfb's framebuffer
//! (`Xvfb -fbdir`: the screen is a memory-mapped file, polled every 2 ms).
//!
//! Scenarios (each run `RUNS` times, default 3; medians printed, with the range):
//! - idle: live capture on a veth in a private network namespace, no traffic;
//! - stopped: the same window after "Stop capture";
//! - demo: `gui --demo` (the bundled capture at about 45 packets/s);
//! - flood: live capture on the veth while a sender in a second namespace sends 50,000 UDP packets/s to it:
//!   how often the table's pixels change per second, and click-to-draw latency: xdotool clicks a tab (Rules,
//!   Traffic, alternately) and the time until the panel under the tabs changes on screen is taken; the time
//!   includes starting xdotool (a few ms), so it is an upper bound.
//!
//! Each renderer in `RENDERERS` (default `glow`; `glow wgpu` with a binary built with `--features wgpu`) is
//! measured. The app writes its per-frame log (`NETWARDEN_FRAME_LOG`) so the bench knows where the tabs are
//! and how many frames were drawn; the latency itself is measured on the screen, not from the log.
//!
//! Needs root (network namespaces), Xvfb, xdotool and iproute2. Run: `make bench-gui` (or `make bench`);
//! `NETWARDEN_BIN=path RENDERERS="glow wgpu"` measures another build of the app.
//! Other processes on the machine change CPU figures: compare medians of several runs.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WIDTH: u32 = 1400;
const HEIGHT: u32 = 900;
/// Packets per second the flood scenario sends.
const FLOOD_PPS: u64 = 50_000;
/// Clicks measured per flood run.
const CLICKS: usize = 20;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--sender") {
        sender(&args[2..]);
        return;
    }
    if let Err(e) = run() {
        eprintln!("gui bench: {e}");
        std::process::exit(1);
    }
}

type Result<T> = std::result::Result<T, String>;

/// The sender, run inside the second namespace: paced UDP datagrams (18 bytes: 60-byte frames).
fn sender(args: &[String]) {
    let (Some(dst), Some(pps), Some(secs)) = (
        args.first(),
        args.get(1).and_then(|s| s.parse::<u64>().ok()),
        args.get(2).and_then(|s| s.parse::<u64>().ok()),
    ) else {
        eprintln!("usage: --sender ADDR:PORT PPS SECS");
        return;
    };
    let Ok(socket) = std::net::UdpSocket::bind("0.0.0.0:0") else {
        eprintln!("sender: cannot bind");
        return;
    };
    if socket.connect(dst).is_err() {
        eprintln!("sender: cannot connect to {dst}");
        return;
    }
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let mut sent = 0u64;
    let payload = [0u8; 18];
    while Instant::now() < end {
        // Packets due by now, sent in a burst each millisecond.
        let due = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX) * pps / 1_000_000;
        while sent < due {
            // A full socket buffer only delays; the count says what left.
            if socket.send(&payload).is_ok() {
                sent += 1;
            } else {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    #[expect(clippy::cast_precision_loss, reason = "a rate for display")]
    let rate = sent as f64 / start.elapsed().as_secs_f64();
    println!("{rate:.0}");
}

struct Env {
    bin: PathBuf,
    dir: tempfile::TempDir,
    rules: PathBuf,
}

fn run() -> Result<()> {
    for tool in ["Xvfb", "xdotool", "ip"] {
        if Command::new("which")
            .arg(tool)
            .stdout(Stdio::null())
            .status()
            .map_or(true, |s| !s.success())
        {
            return Err(format!("{tool} is missing (make deps installs it)"));
        }
    }
    // Only root may create network namespaces.
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if !root {
        return Err("needs root (it creates two network namespaces and a veth pair)".into());
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    // The shipped rules, with the audit log in the temporary directory.
    let text = std::fs::read_to_string("rules.ron").map_err(|e| format!("rules.ron: {e}"))?;
    let log = dir.path().join("firewall.log");
    let text = text.replace(
        "path: \"firewall.log\"",
        &format!("path: {:?}", log.display().to_string()),
    );
    let rules = dir.path().join("rules.ron");
    std::fs::write(&rules, text).map_err(|e| e.to_string())?;
    let env = Env {
        // NETWARDEN_BIN measures another build (one with `--features wgpu` has both renderers).
        bin: std::env::var_os("NETWARDEN_BIN")
            .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_netwarden")), PathBuf::from),
        dir,
        rules,
    };
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let renderers = std::env::var("RENDERERS").unwrap_or_else(|_| "glow".into());
    println!(
        "desktop app under Xvfb {WIDTH}x{HEIGHT} (Mesa software rendering), {runs} runs per figure, medians \
         [min-max]; CPU in % of one core from /proc/PID/stat"
    );
    for renderer in renderers.split_whitespace() {
        let mut results: HashMap<&str, Vec<f64>> = HashMap::new();
        for run in 1..=runs {
            eprintln!("{renderer}: run {run}/{runs}");
            let netns = NetnsPair::create(&format!("nwgb{}", std::process::id()))?;
            let r = measure_run(&env, renderer, &netns)?;
            for (name, value) in r {
                results.entry(name).or_default().push(value);
            }
        }
        println!("renderer {renderer}:");
        for (name, unit, target) in [
            ("idle_cpu", "% CPU  idle (live capture, no traffic)", "target < 2"),
            ("idle_fps", "frames/s idle", ""),
            ("stopped_cpu", "% CPU  capture stopped", "target < 2"),
            ("demo_cpu", "% CPU  demo mode", "target < 15"),
            ("demo_fps", "frames/s demo", ""),
            (
                "flood_pps",
                "packets/s received on the veth (flood)",
                "50,000 sent",
            ),
            ("flood_cpu", "% CPU  at 50k packets/s", ""),
            (
                "flood_refresh",
                "table refreshes/s on screen at 50k packets/s",
                "target >= 10",
            ),
            ("flood_fps", "frames/s at 50k packets/s (frame log)", ""),
            (
                "click_median",
                "ms click-to-screen median at 50k packets/s",
                "target < 100",
            ),
            (
                "click_p95",
                "ms click-to-screen p95 at 50k packets/s",
                "target < 250",
            ),
            ("startup", "s from start to first frame", ""),
        ] {
            if let Some(values) = results.get_mut(name) {
                values.sort_by(f64::total_cmp);
                let median = values[values.len() / 2];
                println!(
                    "  {median:>8.1} [{:.1}-{:.1}]  {unit} {target}",
                    values[0],
                    values[values.len() - 1]
                );
            }
        }
    }
    Ok(())
}

/// One run of every scenario with one renderer.
fn measure_run(env: &Env, renderer: &str, netns: &NetnsPair) -> Result<Vec<(&'static str, f64)>> {
    let mut out = Vec::new();
    let xvfb = Xvfb::start(env.dir.path())?;
    let live = || {
        App::start(
            env,
            &xvfb,
            renderer,
            Some(&netns.app_ns),
            &["--iface", &netns.app_if],
        )
    };
    // Idle, then stopped, in one window.
    {
        let mut app = live()?;
        out.push(("startup", app.startup.as_secs_f64()));
        std::thread::sleep(Duration::from_secs(5));
        let (cpu, fps) = app.cpu_and_fps(Duration::from_secs(20))?;
        out.push(("idle_cpu", cpu));
        out.push(("idle_fps", fps));
        let stop = app.rect("Stop capture")?;
        click(&xvfb, center(stop))?;
        // Move the pointer away so hover does not matter, then let the window settle.
        pointer(&xvfb, (WIDTH as i32 - 20, HEIGHT as i32 - 20))?;
        std::thread::sleep(Duration::from_secs(3));
        let (cpu, _) = app.cpu_and_fps(Duration::from_secs(20))?;
        out.push(("stopped_cpu", cpu));
    }
    {
        let mut app = App::start(env, &xvfb, renderer, None, &["--demo"])?;
        std::thread::sleep(Duration::from_secs(5));
        let (cpu, fps) = app.cpu_and_fps(Duration::from_secs(20))?;
        out.push(("demo_cpu", cpu));
        out.push(("demo_fps", fps));
    }
    {
        let mut app = live()?;
        let secs = 60;
        let mut sender = netns.start_sender(FLOOD_PPS, secs)?;
        let rx_before = netns.rx_packets()?;
        let started = Instant::now();
        std::thread::sleep(Duration::from_secs(5));
        let central = app.rect("central")?;
        // The table's time column, below the header.
        let table = [central[0] + 8, central[1] + 80, central[0] + 110, central[3] - 40];
        let (cpu, fps) = app.cpu_and_fps(Duration::from_secs(10))?;
        out.push(("flood_cpu", cpu));
        out.push(("flood_fps", fps));
        out.push((
            "flood_refresh",
            refreshes_per_sec(&xvfb, table, Duration::from_secs(5))?,
        ));
        let latencies = click_latencies(&xvfb, &mut app)?;
        let rx = netns.rx_packets()?.saturating_sub(rx_before);
        #[expect(clippy::cast_precision_loss, reason = "a rate")]
        out.push(("flood_pps", rx as f64 / started.elapsed().as_secs_f64()));
        out.push(("click_median", percentile(&latencies, 50)));
        out.push(("click_p95", percentile(&latencies, 95)));
        sender.kill().ok();
        sender.wait().ok();
    }
    Ok(out)
}

fn percentile(values: &[f64], p: usize) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get((v.len() * p / 100).min(v.len().saturating_sub(1)))
        .copied()
        .unwrap_or(f64::NAN)
}

fn center(r: [i32; 4]) -> (i32, i32) {
    ((r[0] + r[2]) / 2, (r[1] + r[3]) / 2)
}

/// Milliseconds from each click on a tab to the change of the panel under the tabs on screen.
fn click_latencies(xvfb: &Xvfb, app: &mut App) -> Result<Vec<f64>> {
    let central = app.rect("central")?;
    // The first line of the tab's panel: "Filter:" on Traffic, "Rules file: .." on Rules; the counts
    // further right change with traffic, so they are left out.
    let strip = [central[0] + 2, central[1] + 2, central[0] + 240, central[1] + 26];
    let mut latencies = Vec::new();
    for k in 0..CLICKS {
        let tab = if k % 2 == 0 { "Rules" } else { "Traffic" };
        let target = center(app.rect(tab)?);
        pointer(xvfb, target)?;
        std::thread::sleep(Duration::from_millis(400));
        let before = xvfb.region(strip)?;
        let start = Instant::now();
        // xdotool sleeps 100 ms after a click before it exits: the screen is polled while it runs, not
        // after it returned (which measured xdotool's exit, about 104 ms, whatever the app did).
        let mut clicker = xdotool_spawn(xvfb, &["click", "1"])?;
        let seen = loop {
            if xvfb.region(strip)? != before {
                break Some(start.elapsed().as_secs_f64() * 1000.0);
            }
            if start.elapsed() > Duration::from_secs(5) {
                break None;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let status = clicker.wait().map_err(|e| format!("xdotool: {e}"))?;
        if !status.success() {
            return Err(format!("xdotool click on {tab} failed"));
        }
        latencies.push(seen.ok_or_else(|| format!("a click on {tab} changed nothing on screen within 5 s"))?);
        std::thread::sleep(Duration::from_millis(300));
    }
    Ok(latencies)
}

/// Changes of the region per second, polled every 2 ms; changes closer than 20 ms count once (a frame
/// being copied to the screen while it is read).
fn refreshes_per_sec(xvfb: &Xvfb, region: [i32; 4], time: Duration) -> Result<f64> {
    let start = Instant::now();
    let mut last = xvfb.region(region)?;
    let mut last_change = start;
    let mut changes = 0u32;
    while start.elapsed() < time {
        std::thread::sleep(Duration::from_millis(2));
        let now = xvfb.region(region)?;
        if now != last {
            if last_change.elapsed() >= Duration::from_millis(20) {
                changes += 1;
            }
            last_change = Instant::now();
            last = now;
        }
    }
    Ok(f64::from(changes) / start.elapsed().as_secs_f64())
}

/// An Xvfb server whose screen is a file.
struct Xvfb {
    child: Child,
    display: String,
    fb: File,
    /// Offset of the pixels and bytes per line.
    pixels: u64,
    stride: u64,
}

impl Xvfb {
    fn start(dir: &Path) -> Result<Self> {
        let number = (90..200)
            .find(|n| {
                !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                    && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
            })
            .ok_or("no free X display number")?;
        let fbdir = dir.join(format!("fb{number}"));
        std::fs::create_dir_all(&fbdir).map_err(|e| e.to_string())?;
        let display = format!(":{number}");
        let child = Command::new("Xvfb")
            .args([
                &display,
                "-screen",
                "0",
                &format!("{WIDTH}x{HEIGHT}x24"),
                "-nolisten",
                "tcp",
                "-fbdir",
            ])
            .arg(&fbdir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("Xvfb: {e}"))?;
        let path = fbdir.join("Xvfb_screen0");
        let start = Instant::now();
        while !(path.exists() && Path::new(&format!("/tmp/.X11-unix/X{number}")).exists()) {
            if start.elapsed() > Duration::from_secs(10) {
                return Err("Xvfb did not start".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut fb = File::open(&path).map_err(|e| e.to_string())?;
        let mut header = [0u8; 100];
        fb.read_exact(&mut header).map_err(|e| e.to_string())?;
        // XWD header: CARD32 fields, most significant byte first.
        let field = |k: usize| {
            u32::from_be_bytes([
                header[4 * k],
                header[4 * k + 1],
                header[4 * k + 2],
                header[4 * k + 3],
            ])
        };
        let (header_size, bits_per_pixel, stride, ncolors) = (field(0), field(11), field(12), field(19));
        if bits_per_pixel != 32 || header_size > 4096 {
            return Err(format!(
                "unexpected Xvfb framebuffer (bpp {bits_per_pixel}, header {header_size})"
            ));
        }
        Ok(Self {
            child,
            display,
            fb,
            pixels: u64::from(header_size) + u64::from(ncolors) * 12,
            stride: u64::from(stride),
        })
    }

    /// The pixels of `[x0, y0, x1, y1)`.
    fn region(&self, r: [i32; 4]) -> Result<Vec<u8>> {
        let clamp = |v: i32, max: u32| u64::from(u32::try_from(v.max(0)).unwrap_or(0).min(max));
        let (x0, y0, x1, y1) = (
            clamp(r[0], WIDTH),
            clamp(r[1], HEIGHT),
            clamp(r[2], WIDTH),
            clamp(r[3], HEIGHT),
        );
        let width = usize::try_from((x1.saturating_sub(x0)) * 4).unwrap_or(0);
        let mut out = vec![0u8; width * usize::try_from(y1.saturating_sub(y0)).unwrap_or(0)];
        for (k, line) in out.chunks_mut(width.max(1)).enumerate() {
            let offset = self.pixels + (y0 + k as u64) * self.stride + x0 * 4;
            self.fb.read_exact_at(line, offset).map_err(|e| e.to_string())?;
        }
        Ok(out)
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Starts xdotool without waiting for it.
fn xdotool_spawn(xvfb: &Xvfb, args: &[&str]) -> Result<Child> {
    Command::new("xdotool")
        .args(args)
        .env("DISPLAY", &xvfb.display)
        .spawn()
        .map_err(|e| format!("xdotool: {e}"))
}

fn xdotool(xvfb: &Xvfb, args: &[&str]) -> Result<()> {
    let status = Command::new("xdotool")
        .args(args)
        .env("DISPLAY", &xvfb.display)
        .status()
        .map_err(|e| format!("xdotool: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("xdotool {args:?} failed"))
    }
}

fn pointer(xvfb: &Xvfb, (x, y): (i32, i32)) -> Result<()> {
    xdotool(xvfb, &["mousemove", &x.to_string(), &y.to_string()])
}

fn click(xvfb: &Xvfb, at: (i32, i32)) -> Result<()> {
    pointer(xvfb, at)?;
    std::thread::sleep(Duration::from_millis(200));
    xdotool(xvfb, &["click", "1"])
}

/// The app's process with its frame log.
struct App {
    child: Child,
    log: PathBuf,
    startup: Duration,
    _dirs: tempfile::TempDir,
}

impl App {
    fn start(env: &Env, xvfb: &Xvfb, renderer: &str, netns: Option<&str>, args: &[&str]) -> Result<Self> {
        let dirs = tempfile::tempdir().map_err(|e| e.to_string())?;
        let log = dirs.path().join("frames.log");
        let mut command = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&env.bin);
                c
            }
            None => Command::new(&env.bin),
        };
        for sub in ["runtime", "data", "config", "state"] {
            std::fs::create_dir_all(dirs.path().join(sub)).map_err(|e| e.to_string())?;
        }
        std::fs::set_permissions(
            dirs.path().join("runtime"),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .map_err(|e| e.to_string())?;
        command
            .arg("gui")
            .args(args)
            .args(["--no-enforce", "--rules"])
            .arg(&env.rules)
            .arg("--state-dir")
            .arg(dirs.path().join("state"))
            .env("DISPLAY", &xvfb.display)
            .env("NETWARDEN_FRAME_LOG", &log)
            .env("NETWARDEN_RENDERER", renderer)
            .env("XDG_RUNTIME_DIR", dirs.path().join("runtime"))
            .env("XDG_DATA_HOME", dirs.path().join("data"))
            .env("XDG_CONFIG_HOME", dirs.path().join("config"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let start = Instant::now();
        let child = command
            .spawn()
            .map_err(|e| format!("{}: {e}", env.bin.display()))?;
        let mut app = Self {
            child,
            log,
            startup: Duration::ZERO,
            _dirs: dirs,
        };
        while app.frames() == 0 || app.rect("central").is_err() {
            if let Ok(Some(status)) = app.child.try_wait() {
                return Err(format!(
                    "the app ended at start ({status}); renderer {renderer} not built in?"
                ));
            }
            if start.elapsed() > Duration::from_secs(60) {
                return Err("no frame within 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        app.startup = start.elapsed();
        Ok(app)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn frames(&self) -> u64 {
        self.log_text()
            .lines()
            .filter(|l| l.starts_with("frame "))
            .count() as u64
    }

    /// The last rectangle the app logged for `name`.
    fn rect(&self, name: &str) -> Result<[i32; 4]> {
        let text = self.log_text();
        let prefix = format!("rect {name} ");
        let line = text
            .lines()
            .rev()
            .find(|l| l.starts_with(&prefix))
            .ok_or_else(|| format!("the app logged no rectangle for {name}"))?;
        let v: Vec<i32> = line[prefix.len()..]
            .split(' ')
            .filter_map(|s| s.parse().ok())
            .collect();
        match v.as_slice() {
            [a, b, c, d] => Ok([*a, *b, *c, *d]),
            _ => Err(format!("bad rect line {line:?}")),
        }
    }

    /// CPU time in clock ticks (user + system, all threads).
    fn cpu_ticks(&self) -> Result<u64> {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).map_err(|e| e.to_string())?;
        // Fields after the command name (which may hold spaces) start at state, field 3.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).ok_or("bad /proc stat")?;
        let fields: Vec<u64> = rest
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|s| s.parse().ok())
            .collect();
        Ok(fields.iter().sum())
    }

    /// % of one core used and frames drawn per second over `time`.
    fn cpu_and_fps(&mut self, time: Duration) -> Result<(f64, f64)> {
        let (ticks, frames, start) = (self.cpu_ticks()?, self.frames(), Instant::now());
        std::thread::sleep(time);
        let (ticks2, frames2) = (self.cpu_ticks()?, self.frames());
        let secs = start.elapsed().as_secs_f64();
        // Linux reports CPU time in 1/100 s (USER_HZ).
        #[expect(clippy::cast_precision_loss, reason = "rates for display")]
        Ok(((ticks2 - ticks) as f64 / secs, (frames2 - frames) as f64 / secs))
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Two namespaces joined by a veth pair: the app captures in one, the sender sends from the other.
struct NetnsPair {
    app_ns: String,
    app_if: String,
    send_ns: String,
}

impl NetnsPair {
    fn create(base: &str) -> Result<Self> {
        let pair = Self {
            app_ns: format!("{base}a"),
            app_if: "nwgb0".into(),
            send_ns: format!("{base}s"),
        };
        let ip = |args: &[&str]| -> Result<()> {
            let status = Command::new("ip")
                .args(args)
                .status()
                .map_err(|e| e.to_string())?;
            if status.success() {
                Ok(())
            } else {
                Err(format!("ip {args:?} failed"))
            }
        };
        pair.delete();
        ip(&["netns", "add", &pair.app_ns])?;
        ip(&["netns", "add", &pair.send_ns])?;
        ip(&[
            "link",
            "add",
            "nwgb0",
            "netns",
            &pair.app_ns,
            "type",
            "veth",
            "peer",
            "name",
            "nwgb1",
            "netns",
            &pair.send_ns,
        ])?;
        ip(&["-n", &pair.app_ns, "addr", "add", "10.213.0.1/30", "dev", "nwgb0"])?;
        ip(&[
            "-n",
            &pair.send_ns,
            "addr",
            "add",
            "10.213.0.2/30",
            "dev",
            "nwgb1",
        ])?;
        for (ns, dev) in [(&pair.app_ns, "nwgb0"), (&pair.send_ns, "nwgb1")] {
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(pair)
    }

    fn start_sender(&self, pps: u64, secs: u64) -> Result<Child> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        Command::new("ip")
            .args(["netns", "exec", &self.send_ns])
            .arg(exe)
            .args(["--sender", "10.213.0.1:9", &pps.to_string(), &secs.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("sender: {e}"))
    }

    fn rx_packets(&self) -> Result<u64> {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.app_ns,
                "cat",
                "/sys/class/net/nwgb0/statistics/rx_packets",
            ])
            .output()
            .map_err(|e| e.to_string())?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| "cannot read rx_packets".to_owned())
    }

    fn delete(&self) {
        for ns in [&self.app_ns, &self.send_ns] {
            Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status()
                .ok();
        }
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        self.delete();
    }
}
