//! GUI frame time with 1,000,000 stored rows while 500 new events arrive per frame (50,000 packets/s at
//! 100 frames/s): the traffic panel's full frame (store, filter, layout of the virtual-scrolled table)
//! through egui plus tessellation, headless (no GPU upload). Prints the median and p95 frame time and the
//! memory per stored row (`size_of::<Row>()` plus the shared strings spread over the rows, and the measured
//! RSS growth). Target: median under 8 ms.
//!
//! Run: `cargo bench --bench frame`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use netwarden::engine::RawStore;
use netwarden::event::Event;
use netwarden::packet::{Direction, IpProto, LinkType, PacketMeta, TcpFlags};
use netwarden::rules::RuleSet;
use netwarden::ui::model::Row;
use netwarden::ui::traffic::TrafficPanel;

const RULES: &str = r#"(default_policy: Allow, rules: [
    (name: "router", action: Allow, src: ["192.168.1.1"]),
    (name: "no ssh", action: Block, protocol: Tcp, dst_ports: ["22"]),
])"#;

const STORED_ROWS: usize = 1_000_000;
const EVENTS_PER_FRAME: u64 = 500;
const FRAMES: usize = 330;
const WARMUP_FRAMES: usize = 30;

/// Resident set size from /proc (Linux), 0 when unavailable.
fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<usize>().ok()))
        .map_or(0, |pages| pages * 4096)
}

struct Names {
    iface: Arc<str>,
    hosts: Vec<Arc<str>>,
}

fn event(seq: u64, rules: &RuleSet, names: &Names) -> Event {
    let ts = 1_764_000_000_000_000 + i64::try_from(seq).unwrap_or(0) * 20;
    let mut meta = PacketMeta::new(ts, 60, 60, LinkType::Ethernet);
    let host = u32::try_from(seq % 2_000).unwrap_or(0);
    meta.src_ip = Some(std::net::Ipv4Addr::from(0x0a00_0000 + host).into());
    meta.dst_ip = Some(std::net::Ipv4Addr::new(192, 168, 1, 50).into());
    meta.protocol = Some(IpProto::TCP);
    meta.src_port = Some(40_000);
    meta.dst_port = Some(u16::try_from(seq % 1_000).unwrap_or(0));
    meta.tcp_flags = Some(TcpFlags(TcpFlags::SYN));
    meta.direction = Direction::In;
    let verdict = rules.evaluate(&meta, "eth0");
    let name = names.hosts.get(usize::try_from(seq % 64).unwrap_or(0)).cloned();
    Event {
        seq,
        rule_name: verdict.rule.and_then(|id| rules.rule_name(id).cloned()),
        meta,
        verdict,
        iface: Arc::clone(&names.iface),
        alert: None,
        src_name: name,
        dst_name: None,
        kernel_dropped: false,
    }
}

fn main() {
    let Ok(rules) = RuleSet::from_ron(RULES) else {
        eprintln!("bench rules do not compile");
        return;
    };
    let names = Names {
        iface: Arc::from("eth0"),
        hosts: (0..64)
            .map(|i| Arc::from(format!("host{i}.example.org")))
            .collect(),
    };
    let raw = RawStore::new(1 << 20);
    let mut panel = TrafficPanel::new(STORED_ROWS);
    let before = rss_bytes();
    let mut seq = 0u64;
    for _ in 0..(STORED_ROWS / 10_000) {
        let batch: Vec<Event> = (0..10_000)
            .map(|_| {
                seq += 1;
                event(seq, &rules, &names)
            })
            .collect();
        panel.push(batch);
    }
    let after = rss_bytes();
    let rows = panel.counts().0;
    let ctx = egui::Context::default();
    let input = || egui::RawInput {
        screen_rect: Some(egui::Rect::from_min_size(
            egui::Pos2::ZERO,
            egui::vec2(1400.0, 900.0),
        )),
        ..Default::default()
    };
    let mut times: Vec<Duration> = Vec::with_capacity(FRAMES);
    for frame in 0..FRAMES {
        // Building the events is the engine's work, not the frame's.
        let batch: Vec<Event> = (0..EVENTS_PER_FRAME)
            .map(|_| {
                seq += 1;
                event(seq, &rules, &names)
            })
            .collect();
        let start = Instant::now();
        panel.push(batch);
        let output = ctx.run_ui(input(), |ui| {
            egui::CentralPanel::default().show(ui, |ui| panel.ui(ui, &rules, &raw));
        });
        let meshes = ctx.tessellate(output.shapes, output.pixels_per_point);
        black_box(meshes);
        // The first frames warm up fonts and caches.
        if frame >= WARMUP_FRAMES {
            times.push(start.elapsed());
        }
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = times.get(times.len() / 2).copied().unwrap_or_default();
    let p95 = times.get(times.len() * 95 / 100).copied().unwrap_or_default();
    let (stored, shown, evicted) = panel.counts();
    println!(
        "rows stored: {stored} (cap {STORED_ROWS}), shown {shown}, evicted {evicted}; \
         {EVENTS_PER_FRAME} new events per frame, {} frames timed",
        times.len()
    );
    println!(
        "frame time: median {:.2} ms, p95 {:.2} ms (target: median < 8 ms)",
        ms(median),
        ms(p95)
    );
    let (distinct, string_bytes) = panel.store().strings().usage();
    #[expect(clippy::cast_precision_loss, reason = "a figure for display")]
    let rss_mib = after.saturating_sub(before) as f64 / 1_048_576.0;
    println!(
        "memory per stored row: size_of::<Row>() = {} bytes + shared strings ({distinct} strings, ~{string_bytes} \
         bytes) = ~{} bytes; measured RSS growth {} bytes/row ({rss_mib:.0} MiB for {rows} rows, includes the \
         index list at 8 bytes/row and VecDeque slack); size_of::<Event>() = {} bytes for comparison",
        size_of::<Row>(),
        panel.store().bytes_per_row(),
        after.saturating_sub(before) / rows.max(1),
        size_of::<Event>()
    );
}
