//! The seed example (allow 192.168.1.1 and 127.0.0.1, block TCP ports 22 and 80) through the shipped
//! `rules.ron` on a capture with known content: exact counts from `replay --summary`, the denied events in
//! `--json`, the audit log lines (with burst summaries), the what-if comparison, and CSV/JSONL/pcap exports
//! read back field by field.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::frames::*;
use common::pcapfile::{Record, write_pcap};
use netwarden::capture::SourceSpec;
use netwarden::engine::{Engine, EngineConfig, EngineMessage};
use netwarden::event::Event;
use netwarden::export::{PcapWriter, export_csv, export_jsonl};
use netwarden::rules::{RuleSet, shared};

const BIN: &str = env!("CARGO_BIN_EXE_netwarden");
const START: i64 = 1_764_000_000_000_000;

fn frames() -> Vec<Record> {
    let mut out = Vec::new();
    // `n` copies of `frame`, 1 ms apart.
    let mut push = |n: usize, frame: Vec<u8>| {
        for _ in 0..n {
            let ts = START + i64::try_from(out.len()).unwrap() * 1_000;
            let len = u32::try_from(frame.len()).unwrap();
            out.push((ts, frame.clone(), len));
        }
    };
    let host = [192, 168, 1, 50];
    push(
        10,
        eth(
            0x0800,
            &ipv4([192, 168, 1, 1], host, 6, &tcp(40_000, 22, 0x02, b"")),
        ),
    );
    push(
        5,
        eth(
            0x0800,
            &ipv4([127, 0, 0, 1], [127, 0, 0, 1], 6, &tcp(40_001, 80, 0x02, b"")),
        ),
    );
    push(
        7,
        eth(0x0800, &ipv4([10, 0, 0, 9], host, 6, &tcp(50_000, 22, 0x02, b""))),
    );
    push(
        4,
        eth(
            0x0800,
            &ipv4([10, 0, 0, 9], host, 6, &tcp(50_001, 80, 0x18, b"GET /")),
        ),
    );
    push(
        6,
        eth(
            0x0800,
            &ipv4([10, 0, 0, 9], [8, 8, 8, 8], 17, &udp(5_000, 53, b"query")),
        ),
    );
    push(3, eth(0x0806, &arp(1, [10, 0, 0, 9], host)));
    let mut bad = ipv4([10, 0, 0, 9], host, 17, &udp(1, 2, b""));
    bad[0] = 0x43;
    push(2, eth(0x0800, &bad));
    out
}

struct Setup {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    pcap: PathBuf,
    rules: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let pcap = path.join("seed.pcap");
    write_pcap(&pcap, 1, &frames());
    let rules = path.join("rules.ron");
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("rules.ron"), &rules).unwrap();
    Setup {
        _dir: dir,
        dir: path,
        pcap,
        rules,
    }
}

fn run(args: &[&str], dir: &Path) -> (String, String, Option<i32>) {
    let out = Command::new(BIN).args(args).current_dir(dir).output().unwrap();
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
        out.status.code(),
    )
}

#[test]
fn summary_counts_are_exact() {
    let s = setup();
    let (stdout, stderr, code) = run(
        &[
            "replay",
            "seed.pcap",
            "--rules",
            "rules.ron",
            "--summary",
            "--json",
            "--log",
            "firewall.log",
        ],
        &s.dir,
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "--summary prints only the totals");
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary["packets"], 37);
    assert_eq!(summary["allowed"], 26);
    assert_eq!(summary["blocked"], 11);
    assert_eq!(summary["logged"], 0);
    assert_eq!(summary["malformed"], 2);
    assert_eq!(summary["alerts"], 0);
    let hits: Vec<(String, u64)> = serde_json::from_value(summary["rule_hits"].clone()).unwrap();
    let hit = |name: &str| hits.iter().find(|(n, _)| n == name).map(|(_, h)| *h);
    assert_eq!(hit("router"), Some(10));
    assert_eq!(hit("localhost"), Some(5));
    assert_eq!(hit("no ssh"), Some(7));
    assert_eq!(hit("no http"), Some(4));
    assert_eq!(hit("default"), Some(11));
    assert!(summary["elapsed_secs"].as_f64().unwrap() > 0.0);
    // Without --summary only denied packets are printed, as one flat JSON object each.
    let (stdout, _, _) = run(
        &[
            "replay",
            "seed.pcap",
            "--rules",
            "rules.ron",
            "--json",
            "--no-log",
        ],
        &s.dir,
    );
    let events: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len(), 11);
    assert!(
        events
            .iter()
            .all(|e| e["verdict"] == "block" && e["src_ip"] == "10.0.0.9")
    );
    assert_eq!(events[0]["rule"], "no ssh");
    assert_eq!(events[0]["tcp_flags"], "S");
    assert_eq!(events[0]["link"], "ethernet");
    assert_eq!(events[0]["length"], 54);
    assert_eq!(events[10]["rule"], "no http");
    assert_eq!(events[10]["dst_port"], 80);
    // The audit log: 7 identical ssh denials are one line plus "repeated=6"; the 4 http ones likewise.
    let log = std::fs::read_to_string(s.dir.join("firewall.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 4, "{log}");
    assert!(lines[0].contains("action=block rule=\"no ssh\"") && !lines[0].contains("repeated"));
    assert!(lines[1].ends_with("repeated=6"), "{log}");
    assert!(lines[2].contains("rule=\"no http\"") && lines[2].contains("dst=192.168.1.50:80"));
    assert!(lines[3].ends_with("repeated=3"), "{log}");
}

#[test]
fn text_output_and_all_flag() {
    let s = setup();
    let (stdout, _, code) = run(
        &["replay", "seed.pcap", "--rules", "rules.ron", "--all", "--no-log"],
        &s.dir,
    );
    assert_eq!(code, Some(0));
    assert_eq!(stdout.lines().count(), 37);
    assert!(
        stdout
            .lines()
            .nth(15)
            .unwrap()
            .contains("block tcp    10.0.0.9:50000 -> 192.168.1.50:22 len=54 rule=\"no ssh\""),
        "{stdout}"
    );
    assert!(stdout.contains("malformed=\"malformed ipv4\""));
}

#[test]
fn compare_shows_flows_that_change_verdict() {
    let s = setup();
    let text = std::fs::read_to_string(&s.rules).unwrap();
    let new = text.replacen(
        "rules: [",
        "rules: [\n        (name: \"no dns\", action: Block, protocol: Udp, dst_ports: [\"53\"]),",
        1,
    );
    std::fs::write(s.dir.join("new.ron"), new).unwrap();
    let (stdout, stderr, code) = run(
        &[
            "replay",
            "seed.pcap",
            "--rules",
            "new.ron",
            "--compare",
            "rules.ron",
        ],
        &s.dir,
    );
    assert_eq!(code, Some(0), "{stderr}");
    let first = stdout.lines().next().unwrap();
    assert_eq!(
        first,
        "6 of 37 packets change verdict (6 newly blocked, 0 newly allowed) in 1 flows"
    );
    assert!(
        stdout.contains("udp 10.0.0.9 -> 8.8.8.8:53  allow (\"default\") -> block (\"no dns\")"),
        "{stdout}"
    );
    let (json, _, _) = run(
        &[
            "replay",
            "seed.pcap",
            "--rules",
            "new.ron",
            "--compare",
            "rules.ron",
            "--json",
        ],
        &s.dir,
    );
    let report: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(report["changed_packets"], 6);
    assert_eq!(report["flows"][0]["packets"], 6);
}

fn events(s: &Setup) -> Vec<Event> {
    let spec = SourceSpec::File {
        path: s.pcap.clone(),
        filter: None,
    };
    let mut config = EngineConfig::new(spec, shared(RuleSet::load(&s.rules).unwrap()));
    config.backpressure = true;
    let engine = Engine::spawn(config).unwrap();
    let mut all = Vec::new();
    while let Ok(message) = engine.events.recv() {
        match message {
            EngineMessage::Events(batch) => all.extend(batch),
            EngineMessage::Stopped(result) => {
                result.unwrap();
                break;
            }
            EngineMessage::Notice(_) => {}
        }
    }
    engine.join().unwrap();
    all
}

#[test]
fn exports_read_back_field_by_field() {
    let s = setup();
    let events = events(&s);
    assert_eq!(events.len(), 37);
    let csv_path = s.dir.join("events.csv");
    let n = export_csv(&events, std::fs::File::create(&csv_path).unwrap()).unwrap();
    assert_eq!(n, 37);
    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 37);
    assert_eq!(&rows[15][col("src_ip")], "10.0.0.9");
    assert_eq!(&rows[15][col("dst_port")], "22");
    assert_eq!(&rows[15][col("verdict")], "block");
    assert_eq!(&rows[15][col("rule")], "no ssh");
    assert_eq!(&rows[15][col("time")], "2025-11-24T16:00:00.015000Z");
    assert_eq!(&rows[36][col("malformed")], "malformed ipv4");

    let mut jsonl = Vec::new();
    export_jsonl(&events, &mut jsonl).unwrap();
    let parsed: Vec<serde_json::Value> = String::from_utf8(jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(parsed.len(), 37);
    assert_eq!(parsed[30]["protocol"], "udp");
    assert_eq!(parsed[33]["protocol"], "arp");

    let pcap_path = s.dir.join("out.pcap");
    let mut writer = PcapWriter::create(&pcap_path, netwarden::packet::LinkType::Ethernet).unwrap();
    let originals = frames();
    for (ts, data, wire) in &originals {
        writer.write(*ts, *wire, data);
    }
    writer.finish().unwrap();
    let mut cap = pcap::Capture::from_file(&pcap_path).unwrap();
    assert_eq!(cap.get_datalink(), pcap::Linktype::ETHERNET);
    for (ts, data, wire) in &originals {
        let p = cap.next_packet().unwrap();
        assert_eq!(p.data, &data[..]);
        assert_eq!(p.header.len, *wire);
        assert_eq!(p.header.ts.tv_sec * 1_000_000 + p.header.ts.tv_usec, *ts);
    }
    assert!(cap.next_packet().is_err());
}

/// A DNS response for `www.example.org`: a CNAME to `edge.example.net` and its A record 93.184.216.34.
fn dns_response() -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0];
    m.extend(b"\x03www\x07example\x03org\x00");
    m.extend([0, 1, 0, 1]);
    m.extend([0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 18]);
    let cname_at = u8::try_from(m.len()).unwrap();
    m.extend(b"\x04edge\x07example\x03net\x00");
    m.extend([0xc0, cname_at, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 93, 184, 216, 34]);
    m
}

#[test]
fn names_learned_from_dns_answers_in_a_file_label_later_events_and_log_lines() {
    let s = setup();
    let answer = eth(
        0x0800,
        &ipv4(
            [192, 168, 1, 53],
            [192, 168, 1, 50],
            17,
            &udp(53, 41_000, &dns_response()),
        ),
    );
    let ssh = eth(
        0x0800,
        &ipv4(
            [192, 168, 1, 50],
            [93, 184, 216, 34],
            6,
            &tcp(40_000, 22, 0x02, b""),
        ),
    );
    // The answer comes first, then many chunks' worth of other traffic, then the connection it names.
    let mut records = vec![(START, answer, 0)];
    let filler = eth(
        0x0800,
        &ipv4([10, 0, 0, 9], [10, 0, 0, 8], 17, &udp(5_000, 5_001, b"x")),
    );
    for i in 1..2_000 {
        records.push((START + i * 1_000, filler.clone(), 0));
    }
    records.push((START + 2_000 * 1_000, ssh, 0));
    for record in &mut records {
        record.2 = u32::try_from(record.1.len()).unwrap();
    }
    let pcap = s.dir.join("names.pcap");
    write_pcap(&pcap, 1, &records);
    let (stdout, stderr, code) = run(
        &[
            "replay",
            "names.pcap",
            "--rules",
            "rules.ron",
            "--log",
            "names.log",
        ],
        &s.dir,
    );
    assert_eq!(code, Some(0), "{stderr}");
    let line = stdout.lines().find(|l| l.contains(":22 ")).unwrap_or_default();
    // Named by what was asked, not by the CNAME's target.
    assert!(line.contains("dst_name=\"www.example.org\""), "{stdout}");
    let log = std::fs::read_to_string(s.dir.join("names.log")).unwrap();
    let logged = log.lines().find(|l| l.contains(":22 ")).unwrap_or_default();
    assert!(logged.contains("dst_name=\"www.example.org\""), "{log}");
}
