//! GUI frame time with 1,000,000 stored rows while 500 new events arrive per frame (50,000 packets/s at
//! 100 frames/s): the traffic panel's full frame (store, filter, layout, virtual-scrolled table, details off)
//! through egui plus tessellation, headless (no GPU upload). Prints median and p95 frame time and the memory
//! per stored row. Target: median under 8 ms.
//!
//! Run: `cargo bench --bench frame` (or `make bench`).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use netwarden::engine::RawStore;
use netwarden::event::Event;
use netwarden::packet::{Direction, IpProto, LinkType, PacketMeta, TcpFlags};
use netwarden::rules::RuleSet;
use netwarden::ui::traffic::TrafficPanel;

const RULES: &str = r#"(default_policy: Allow, rules: [
    (name: "router", action: Allow, src: ["192.168.1.1"]),
    (name: "no ssh", action: Block, protocol: Tcp, dst_ports: ["22"]),
])"#;

fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<usize>().ok()))
        .map_or(0, |pages| pages * 4096)
}

fn event(seq: u64, rules: &RuleSet, iface: &Arc<str>) -> Event {
    let mut meta = PacketMeta::new(
        1_764_000_000_000_000 + i64::try_from(seq).unwrap_or(0) * 20,
        60,
        60,
        LinkType::Ethernet,
    );
    let host = u32::try_from(seq % 2_000).unwrap_or(0);
    meta.src_ip = Some(std::net::Ipv4Addr::from(0x0a00_0000 + host).into());
    meta.dst_ip = Some(std::net::Ipv4Addr::new(192, 168, 1, 50).into());
    meta.protocol = Some(IpProto::TCP);
    meta.src_port = Some(40_000);
    meta.dst_port = Some(u16::try_from(seq % 1_000).unwrap_or(0));
    meta.tcp_flags = Some(TcpFlags(TcpFlags::SYN));
    meta.direction = Direction::In;
    let verdict = rules.evaluate(&meta, "eth0");
    Event {
        seq,
        rule_name: verdict.rule.and_then(|id| rules.rule_name(id).cloned()),
        meta,
        verdict,
        iface: Arc::clone(iface),
        alert: None,
        src_name: None,
        dst_name: None,
        kernel_dropped: false,
        origin: netwarden::event::Origin::Untracked,
        rules_version: 0,
    }
}

fn main() {
    let Ok(rules) = RuleSet::from_ron(RULES) else {
        eprintln!("bench rules do not compile");
        return;
    };
    let iface: Arc<str> = Arc::from("eth0");
    let raw = RawStore::new(1 << 20);
    let mut panel = TrafficPanel::new(1_000_000);
    let before = rss_bytes();
    let mut seq = 0u64;
    for _ in 0..100 {
        panel.push((0..10_000).map(|_| {
            seq += 1;
            event(seq, &rules, &iface)
        }));
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
    let mut times: Vec<Duration> = Vec::new();
    for frame in 0..330 {
        let batch: Vec<Event> = (0..500)
            .map(|_| {
                seq += 1;
                event(seq, &rules, &iface)
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
        if frame >= 30 {
            times.push(start.elapsed());
        }
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = times.get(times.len() / 2).copied().unwrap_or_default();
    let p95 = times.get(times.len() * 95 / 100).copied().unwrap_or_default();
    println!(
        "rows stored: {rows} (cap 1,000,000), 500 new events per frame, {} frames timed",
        times.len()
    );
    println!(
        "frame time: median {:.2} ms, p95 {:.2} ms (target: median < 8 ms)",
        ms(median),
        ms(p95)
    );
    println!(
        "memory per stored row: {} bytes measured (RSS growth {:.0} MiB for {rows} rows, includes the index list \
         at 8 bytes/row); size_of::<Row>() = {} bytes + shared strings ({} distinct) = ~{} bytes; \
         size_of::<Event>() = {} bytes for comparison",
        (after.saturating_sub(before)) / rows.max(1),
        (after.saturating_sub(before)) as f64 / 1_048_576.0,
        std::mem::size_of::<netwarden::ui::model::Row>(),
        panel.store().strings().usage().0,
        panel.store().bytes_per_row(),
        std::mem::size_of::<Event>()
    );
}
