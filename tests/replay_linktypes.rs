//! End to end through the binary: `netwarden replay FILE --json` on captures this test writes, with the
//! frames a Linux host really captures (BIG TCP and TSO super-packets, frames truncated past the TCP
//! header) and the link types beyond Ethernet (PPP, PPP in HDLC framing, Cisco HDLC, IPoIB, NFLOG), judged
//! by a `block tcp dport 22` rule; and a link type netwarden does not parse, counted and reported once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::frames::*;
use common::pcapfile::{Record, write_pcap, write_pcapng};

const BIN: &str = env!("CARGO_BIN_EXE_netwarden");
const START: i64 = 1_764_000_000_000_000;

const RULES: &str = r#"(
    default_policy: Allow,
    rules: [
        (name: "no ssh", action: Block, protocol: Tcp, dst_ports: ["22"]),
    ],
)"#;

/// Runs the binary in `dir` and returns stdout, stderr and the exit code.
fn run(dir: &Path, args: &[&str]) -> (String, String, Option<i32>) {
    let out = Command::new(BIN).args(args).current_dir(dir).output().unwrap();
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
        out.status.code(),
    )
}

/// One JSON object per line.
fn events(stdout: &str) -> Vec<serde_json::Value> {
    stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Records 1 ms apart; `(frame, bytes kept)` with the frame's full length on the wire.
fn records(frames: Vec<(Vec<u8>, usize)>) -> Vec<Record> {
    frames
        .into_iter()
        .enumerate()
        .map(|(i, (mut frame, keep))| {
            let wire = u32::try_from(frame.len()).unwrap();
            frame.truncate(keep);
            (START + i64::try_from(i).unwrap() * 1_000, frame, wire)
        })
        .collect()
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.ron"), RULES).unwrap();
    dir
}

#[test]
fn port_rule_matches_big_tcp_tso_and_truncated_frames() {
    let dir = setup();
    let whole = |f: Vec<u8>| {
        let len = f.len();
        (f, len)
    };
    let frames = vec![
        // IPv4 BIG TCP (total length 0), 70,054 bytes on the wire, 65,535 captured.
        (
            eth(
                0x0800,
                &ipv4_total_len(V4_A, V4_B, 6, 0, &tcp(40_000, 22, 0x18, &[7; 70_000])),
            ),
            65_535,
        ),
        // IPv6 BIG TCP (jumbo payload option), likewise cut by the snaplen.
        (
            eth(
                0x86dd,
                &ipv6_jumbo(v6(1), v6(2), 6, &tcp(40_001, 22, 0x18, &[7; 70_000])),
            ),
            65_535,
        ),
        // TSO as some captures store it: total length 28,960, only 1,514 bytes in a frame said to be whole.
        whole(eth(
            0x0800,
            &ipv4_total_len(V4_A, V4_B, 6, 28_960, &tcp(40_002, 22, 0x10, &[1; 1_460])),
        )),
        // Captured with a 64-byte snaplen: the TCP header is there, the rest is not.
        (
            eth(0x0800, &ipv4(V4_A, V4_B, 6, &tcp(40_003, 22, 0x02, &[0; 500]))),
            64,
        ),
        // Not port 22: allowed.
        whole(eth(0x0800, &ipv4(V4_A, V4_B, 6, &tcp(40_004, 443, 0x02, b"")))),
    ];
    write_pcap(&dir.path().join("offload.pcap"), 1, &records(frames));

    let (stdout, stderr, code) = run(dir.path(), &["replay", "offload.pcap", "--json", "--no-log"]);
    assert_eq!(code, Some(0), "{stderr}");
    let events = events(&stdout);
    assert_eq!(events.len(), 4, "{stdout}");
    let want = [
        // Cut by the 65,535-byte snaplen: judged on part of the packet, and marked so.
        (
            "10.1.2.3",
            "192.168.1.50",
            40_000,
            "PA",
            "truncated ipv4",
            70_054,
            65_535,
        ),
        (
            "2001:db8::1",
            "2001:db8::2",
            40_001,
            "PA",
            "truncated ipv6",
            70_082,
            65_535,
        ),
        (
            "10.1.2.3",
            "192.168.1.50",
            40_002,
            "A",
            "truncated ipv4",
            1_514,
            1_514,
        ),
        ("10.1.2.3", "192.168.1.50", 40_003, "S", "truncated ipv4", 554, 64),
    ];
    for (event, (src, dst, src_port, flags, malformed, length, caplen)) in events.iter().zip(want) {
        assert_eq!(event["verdict"], "block", "{event}");
        assert_eq!(event["rule"], "no ssh", "{event}");
        assert_eq!(event["protocol"], "tcp", "{event}");
        assert_eq!(event["src_ip"], src, "{event}");
        assert_eq!(event["dst_ip"], dst, "{event}");
        assert_eq!(event["src_port"], src_port, "{event}");
        assert_eq!(event["dst_port"], 22, "{event}");
        assert_eq!(event["tcp_flags"], flags, "{event}");
        assert_eq!(event["malformed"], malformed, "{event}");
        assert_eq!(event["length"], length, "{event}");
        assert_eq!(event["caplen"], caplen, "{event}");
    }

    let (stdout, stderr, code) = run(
        dir.path(),
        &["replay", "offload.pcap", "--json", "--summary", "--no-log"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary["packets"], 5);
    assert_eq!(summary["blocked"], 4);
    assert_eq!(
        summary["malformed"], 4,
        "every frame judged on part of its packet (three snaplen cuts, one IP length past the frame)"
    );
    assert_eq!(summary["unparsed"], 0);
    assert!(!stderr.contains("not supported"), "{stderr}");
}

#[test]
fn every_new_link_type_is_judged_by_its_ports() {
    let dir = setup();
    let v4 = ipv4(V4_A, V4_B, 6, &tcp(40_000, 22, 0x02, b""));
    let v6_packet = ipv6(v6(1), v6(2), 6, &tcp(40_001, 22, 0x02, b""));
    let other = ipv4(V4_A, V4_B, 17, &udp(5_000, 53, b"q"));
    let cases: [(&str, u32, Vec<Vec<u8>>); 6] = [
        (
            "ppp",
            9,
            vec![
                ppp(0x21, &v4),
                ppp_compressed(0x57, &v6_packet),
                ppp(0x21, &other),
            ],
        ),
        (
            "ppp_hdlc",
            50,
            vec![ppp(0x21, &v4), chdlc(0x86dd, &v6_packet), ppp(0x21, &other)],
        ),
        (
            "c_hdlc",
            104,
            vec![
                chdlc(0x0800, &v4),
                chdlc(0x86dd, &v6_packet),
                chdlc(0x0800, &other),
            ],
        ),
        (
            "ipoib",
            242,
            vec![
                ipoib(0x0800, &v4),
                ipoib(0x86dd, &v6_packet),
                ipoib(0x0800, &other),
            ],
        ),
        (
            "nflog",
            239,
            vec![nflog(2, &v4), nflog(10, &v6_packet), nflog(2, &other)],
        ),
        (
            "linux_sll2",
            276,
            vec![sll2(0x0800, &v4), sll2(0x86dd, &v6_packet), sll2(0x0800, &other)],
        ),
    ];
    for (name, linktype, frames) in cases {
        let frames = frames
            .into_iter()
            .map(|f| {
                let len = f.len();
                (f, len)
            })
            .collect();
        let file = format!("{name}.pcapng");
        write_pcapng(
            &dir.path().join(&file),
            u16::try_from(linktype).unwrap(),
            &records(frames),
        );
        let (stdout, stderr, code) = run(dir.path(), &["replay", &file, "--json", "--all", "--no-log"]);
        assert_eq!(code, Some(0), "{name}: {stderr}");
        let events = events(&stdout);
        assert_eq!(events.len(), 3, "{name}: {stdout}");
        let got: Vec<(&str, &str, &str, u64, &str)> = events
            .iter()
            .map(|e| {
                (
                    e["link"].as_str().unwrap(),
                    e["verdict"].as_str().unwrap(),
                    e["src_ip"].as_str().unwrap(),
                    e["dst_port"].as_u64().unwrap(),
                    e["malformed"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (name, "block", "10.1.2.3", 22, ""),
                (name, "block", "2001:db8::1", 22, ""),
                (name, "allow", "10.1.2.3", 53, ""),
            ],
            "{name}"
        );
    }
}

#[test]
fn unsupported_link_type_is_counted_and_reported_once() {
    let dir = setup();
    // LINKTYPE_USER0 (147): private use, nothing netwarden could parse.
    let frames = (0..5).map(|i| (vec![i; 60], 60)).collect();
    write_pcap(&dir.path().join("user0.pcap"), 147, &records(frames));
    let (stdout, stderr, code) = run(
        dir.path(),
        &["replay", "user0.pcap", "--json", "--summary", "--no-log"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let notice = "netwarden: link type 147 not supported: packets counted, not parsed";
    assert_eq!(stderr.matches(notice).count(), 1, "{stderr}");
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary["packets"], 5);
    assert_eq!(summary["unparsed"], 5);
    assert_eq!(summary["malformed"], 0);
    // The text summary says it too.
    let (stdout, _, _) = run(dir.path(), &["replay", "user0.pcap", "--summary", "--no-log"]);
    assert!(stdout.contains("unparsed    5"), "{stdout}");
    // A parsed link type says nothing of the kind.
    write_pcap(
        &dir.path().join("eth.pcap"),
        1,
        &records(vec![(
            eth(0x0800, &ipv4(V4_A, V4_B, 6, &tcp(1, 2, 0x02, b""))),
            54,
        )]),
    );
    let (_, stderr, code) = run(dir.path(), &["replay", "eth.pcap", "--summary", "--no-log"]);
    assert_eq!(code, Some(0));
    assert!(!stderr.contains("not supported"), "{stderr}");
}
