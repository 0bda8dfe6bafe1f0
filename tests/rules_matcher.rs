//! End-to-end tests of matching: the seed policy on hand-built packets, lint messages, explain steps, and
//! the indexed matcher agreeing with the linear reference on random rule sets and packets.

#![allow(clippy::unwrap_used, reason = "test helpers panic on bad fixtures")]

use std::net::IpAddr;

use netwarden::packet::{Direction, Fragment, IpProto, LinkType, NetworkKind, PacketMeta};
use netwarden::rules::{
    Action, LintKind, Owner, Protocol, RuleDirection, RuleFile, RuleId, RuleSet, RuleSpec, StepOutcome,
    UserSpec, Verdict, lint, synthetic_rules,
};
use proptest::prelude::*;

const SEED: &str = r#"(
    default_policy: Allow,
    rules: [
        (name: "router", action: Allow, src: ["192.168.1.1"]),
        (name: "localhost", action: Allow, src: ["127.0.0.1", "::1"]),
        (name: "no ssh", action: Block, protocol: Tcp, dst_ports: ["22"]),
        (name: "no http", action: Block, protocol: Tcp, dst_ports: ["80"]),
    ],
)"#;

fn packet(src: &str, dst: &str, proto: IpProto, ports: Option<(u16, u16)>) -> PacketMeta {
    let mut m = PacketMeta::new(1_700_000_000_000_000, 74, 74, LinkType::Ethernet);
    let src: IpAddr = src.parse().unwrap();
    m.network = if src.is_ipv4() {
        NetworkKind::Ipv4
    } else {
        NetworkKind::Ipv6
    };
    m.src_ip = Some(src);
    m.dst_ip = Some(dst.parse().unwrap());
    m.protocol = Some(proto);
    if let Some((s, d)) = ports {
        m.src_port = Some(s);
        m.dst_port = Some(d);
    }
    m.direction = Direction::In;
    m
}

fn v(action: Action, rule: Option<u32>) -> Verdict {
    Verdict {
        action,
        rule: rule.map(RuleId),
    }
}

#[test]
fn seed_policy_gives_exact_verdicts() {
    let set: RuleSet = SEED.parse().unwrap();
    let cases = [
        // The router may do anything, even ssh.
        (
            packet("192.168.1.1", "192.168.1.10", IpProto::TCP, Some((50000, 22))),
            v(Action::Allow, Some(0)),
        ),
        (
            packet("127.0.0.1", "127.0.0.1", IpProto::TCP, Some((50000, 80))),
            v(Action::Allow, Some(1)),
        ),
        (
            packet("::1", "::1", IpProto::TCP, Some((50000, 22))),
            v(Action::Allow, Some(1)),
        ),
        (
            packet("10.0.0.9", "192.168.1.10", IpProto::TCP, Some((50000, 22))),
            v(Action::Block, Some(2)),
        ),
        (
            packet("2001:db8::9", "2001:db8::1", IpProto::TCP, Some((50000, 80))),
            v(Action::Block, Some(3)),
        ),
        // UDP to 22 / 80 is not TCP: default policy.
        (
            packet("10.0.0.9", "192.168.1.10", IpProto::UDP, Some((50000, 22))),
            v(Action::Allow, None),
        ),
        (
            packet("10.0.0.9", "192.168.1.10", IpProto::TCP, Some((50000, 443))),
            v(Action::Allow, None),
        ),
        // Source port 22 is not destination port 22.
        (
            packet("10.0.0.9", "192.168.1.10", IpProto::TCP, Some((22, 50000))),
            v(Action::Allow, None),
        ),
        // A non-first fragment has no ports: port rules cannot match it.
        (
            packet("10.0.0.9", "192.168.1.10", IpProto::TCP, None),
            v(Action::Allow, None),
        ),
        (
            packet("10.0.0.9", "192.168.1.10", IpProto::ICMP, None),
            v(Action::Allow, None),
        ),
        // 192.168.1.1 as an IPv4-mapped IPv6 address is another family: not the router.
        (
            packet("::ffff:192.168.1.1", "::1", IpProto::TCP, Some((1, 22))),
            v(Action::Block, Some(2)),
        ),
    ];
    for (i, (meta, want)) in cases.iter().enumerate() {
        assert_eq!(set.evaluate(meta, "eth0"), *want, "case {i}");
        assert_eq!(
            set.matching_rule_linear(meta, "eth0", Owner::UNKNOWN),
            want.rule,
            "case {i}"
        );
    }
    // An ARP frame: no addresses, no protocol.
    let mut arp = PacketMeta::new(5, 42, 42, LinkType::Ethernet);
    arp.network = NetworkKind::Arp;
    assert_eq!(set.evaluate(&arp, "eth0"), v(Action::Allow, None));

    assert_eq!(set.hits(RuleId(2)).count, 2);
    assert_eq!(set.hits(RuleId(2)).last_hit_micros, Some(1_700_000_000_000_000));
    assert_eq!(set.hits(RuleId(1)).count, 2);
    assert_eq!(set.default_hits().count, 6);
}

#[test]
fn direction_interface_and_enabled_fields() {
    let set: RuleSet = r#"(default_policy: Block, rules: [
        (name: "off", action: Log, enabled: false),
        (name: "out web", action: Allow, direction: Out, protocol: Tcp, dst_ports: ["443"]),
        (name: "in on eth1", action: Log, direction: In, interface: "eth1"),
        (name: "gre", action: Allow, protocol: Number(47)),
        (name: "ping6", action: Allow, protocol: Icmpv6, src: ["2001:db8::/32"]),
    ])"#
    .parse()
    .unwrap();
    let mut m = packet("10.0.0.1", "10.0.0.2", IpProto::TCP, Some((40000, 443)));
    m.direction = Direction::Out;
    assert_eq!(set.evaluate(&m, "eth0"), v(Action::Allow, Some(1)));
    m.direction = Direction::Local;
    assert_eq!(set.evaluate(&m, "eth0"), v(Action::Allow, Some(1)));
    m.direction = Direction::In;
    assert_eq!(set.evaluate(&m, "eth0"), v(Action::Block, None));
    assert_eq!(set.evaluate(&m, "eth1"), v(Action::Log, Some(2)));
    m.direction = Direction::Unknown;
    assert_eq!(set.evaluate(&m, "eth1"), v(Action::Block, None));
    let gre = packet("10.0.0.1", "10.0.0.2", IpProto(47), None);
    assert_eq!(set.evaluate(&gre, "eth0").rule, Some(RuleId(3)));
    let ping6 = packet("2001:db8::7", "2001:db8::1", IpProto::ICMPV6, None);
    assert_eq!(set.evaluate(&ping6, "eth0").rule, Some(RuleId(4)));
    let ping = packet("10.0.0.7", "10.0.0.1", IpProto::ICMP, None);
    assert_eq!(set.evaluate(&ping, "eth0").rule, None);
}

#[test]
fn lint_finds_shadowed_duplicate_and_broad_rules() {
    let set: RuleSet = r#"(default_policy: Allow, rules: [
        (name: "no ssh", action: Block, protocol: Tcp, dst_ports: ["22"]),
        (name: "lan", action: Allow, src: ["10.0.0.5/8"]),
        (name: "ssh lan", action: Allow, protocol: Tcp, src: ["10.1.0.0/16"], dst_ports: ["22"]),
        (name: "no ssh again", action: Log, protocol: Tcp, dst_ports: ["22"]),
        (name: "all udp ports", action: Block, protocol: Udp, dst_ports: ["0-65535"]),
        (name: "any v6", action: Log, src: ["::/0"]),
        (name: "kernel", action: Block, protocol: Tcp, dst_ports: ["23"], enforce: true),
        (name: "disabled dup", action: Block, protocol: Tcp, dst_ports: ["22"], enabled: false),
        (name: "catch all", action: Allow),
        (name: "after", action: Block, protocol: Icmp),
    ])"#
    .parse()
    .unwrap();
    let got: Vec<(u32, LintKind, String)> = lint(&set)
        .into_iter()
        .map(|w| (w.rule.0, w.kind, w.message))
        .collect();
    let want = vec![
        (
            1,
            LintKind::Broad,
            r#"rule 2 "lan": src 10.0.0.5/8 has host bits set: it matches all of 10.0.0.0/8"#,
        ),
        (
            2,
            LintKind::Shadowed { by: RuleId(0) },
            r#"rule 3 "ssh lan" can never match: rule 1 "no ssh" covers it"#,
        ),
        (
            3,
            LintKind::Duplicate { of: RuleId(0) },
            r#"rule 4 "no ssh again" duplicates rule 1 "no ssh" (same match fields); it can never log, rule 1 decides first with block"#,
        ),
        (
            4,
            LintKind::Broad,
            r#"rule 5 "all udp ports": dst port range 0-65535 covers every port (but still skips packets without ports)"#,
        ),
        (
            5,
            LintKind::Broad,
            r#"rule 6 "any v6": src ::/0 matches every IPv6 address"#,
        ),
        (
            6,
            LintKind::Broad,
            r#"rule 7 "kernel" is enforced without src or dst: the kernel will drop this traffic for every address"#,
        ),
        (
            8,
            LintKind::Broad,
            r#"rule 9 "catch all" matches every packet (allow): the 1 enabled rule(s) after it can never match"#,
        ),
        (
            9,
            LintKind::Shadowed { by: RuleId(8) },
            r#"rule 10 "after" can never match: rule 9 "catch all" covers it"#,
        ),
    ];
    let want: Vec<(u32, LintKind, String)> = want.into_iter().map(|(i, k, m)| (i, k, m.to_owned())).collect();
    assert_eq!(got, want);
}

#[test]
fn explain_lists_each_rule_until_the_match() {
    let set: RuleSet = r#"(default_policy: Block, rules: [
        (name: "dns", action: Allow, protocol: Udp, dst_ports: ["53"]),
        (name: "office", action: Allow, src: ["192.168.0.0/16"]),
        (name: "old", action: Allow, enabled: false),
        (name: "web", action: Allow, protocol: Tcp, dst_ports: ["22", "8000-8999"]),
        (name: "https", action: Log, protocol: Tcp, dst_ports: ["443"]),
        (name: "never reached", action: Block),
    ])"#
    .parse()
    .unwrap();
    let m = packet("10.1.2.3", "10.0.0.1", IpProto::TCP, Some((40000, 443)));
    let e = set.explain(&m, "eth0");
    let steps: Vec<(u32, &str, StepOutcome)> = e
        .steps
        .iter()
        .map(|s| (s.rule.0, s.name.as_ref(), s.outcome.clone()))
        .collect();
    let skip = |s: &str| StepOutcome::Skipped(s.to_owned());
    assert_eq!(
        steps,
        vec![
            (0, "dns", skip("protocol tcp is not udp")),
            (1, "office", skip("src 10.1.2.3 not in 192.168.0.0/16")),
            (2, "old", skip("disabled")),
            (3, "web", skip("dst port 443 not in 22, 8000-8999")),
            (4, "https", StepOutcome::Matched),
        ]
    );
    assert_eq!(e.verdict, v(Action::Log, Some(4)));
    assert_eq!(e.summary(), "rule 5 \"https\" matched: log");
    // Explain is pure: no hits were counted.
    assert_eq!(set.hits(RuleId(4)).count, 0);

    let frag = packet("10.1.2.3", "10.0.0.1", IpProto::TCP, None);
    let e = set.explain(&frag, "eth0");
    assert_eq!(e.steps[0].outcome, skip("protocol tcp is not udp"));
    assert_eq!(
        e.steps[3].outcome,
        skip("packet has no ports (fragment or non-TCP/UDP)")
    );
    assert_eq!(e.verdict, v(Action::Block, Some(5)));
}

// ---- index == linear ----

const V4_NETS: &[&str] = &[
    "10.0.0.0/8",
    "10.1.0.0/16",
    "10.1.2.0/24",
    "10.1.2.3",
    "10.0.0.5/8",
    "192.168.1.0/24",
    "192.168.1.1",
    "0.0.0.0/0",
    "10.1.2.0/31",
    "128.0.0.0/1",
];
const V6_NETS: &[&str] = &[
    "2001:db8::/32",
    "2001:db8::1",
    "::/0",
    "fd00::/8",
    "2001:db8:1::/48",
    "::1",
];
const PORT_SPECS: &[&str] = &[
    "22",
    "80",
    "443",
    "0",
    "65535",
    "8000-8999",
    "20-25",
    "1024-65535",
    "0-65535",
    "53",
];
const ADDRS: &[&str] = &[
    "10.1.2.3",
    "10.1.2.4",
    "10.9.9.9",
    "192.168.1.1",
    "192.168.1.7",
    "8.8.8.8",
    "200.1.1.1",
    "2001:db8::1",
    "2001:db8:1::5",
    "fd00::1",
    "::1",
    "::ffff:10.1.2.3",
];
const PORTS: &[u16] = &[22, 80, 443, 0, 65535, 8080, 23, 5000, 53, 1024];

fn net_list() -> impl Strategy<Value = Vec<String>> {
    let all: Vec<&'static str> = V4_NETS.iter().chain(V6_NETS).copied().collect();
    prop_oneof![
        2 => Just(Vec::new()),
        3 => prop::collection::vec(prop::sample::select(all), 1..3).prop_map(|v| v.into_iter().map(String::from).collect()),
    ]
}

fn port_list() -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        2 => Just(Vec::new()),
        2 => prop::collection::vec(prop::sample::select(PORT_SPECS), 1..3)
            .prop_map(|v| v.into_iter().map(String::from).collect()),
    ]
}

fn protocol() -> impl Strategy<Value = Protocol> {
    prop::sample::select(vec![
        Protocol::Any,
        Protocol::Tcp,
        Protocol::Udp,
        Protocol::Icmp,
        Protocol::Icmpv6,
        Protocol::Number(6),
        Protocol::Number(47),
    ])
}

fn rule_spec() -> impl Strategy<Value = RuleSpec> {
    (
        prop::bool::weighted(0.85),
        prop::sample::select(vec![Action::Allow, Action::Block, Action::Log]),
        prop::sample::select(vec![RuleDirection::Any, RuleDirection::In, RuleDirection::Out]),
        protocol(),
        (net_list(), net_list()),
        (port_list(), port_list()),
        prop::sample::select(vec![
            None,
            None,
            Some("eth0"),
            Some("eth1"),
            Some("eth+"),
            Some("e+"),
        ]),
        (
            prop::sample::select(vec![
                None,
                None,
                None,
                Some("/usr/bin/curl"),
                Some("*/curl"),
                Some("/usr/bin/*"),
                Some("/opt/app/bin/x"),
            ]),
            prop::sample::select(vec![
                None,
                None,
                None,
                Some(UserSpec::Uid(0)),
                Some(UserSpec::Uid(1000)),
                Some(UserSpec::Name("root".into())),
            ]),
            prop::sample::select(vec![
                None,
                None,
                None,
                Some("nginx.service"),
                Some("cron.service"),
            ]),
        ),
    )
        .prop_map(
            |(
                enabled,
                action,
                direction,
                protocol,
                (src, dst),
                (src_ports, dst_ports),
                iface,
                (program, user, unit),
            )| {
                let ports_ok = protocol.can_have_ports();
                RuleSpec {
                    enabled,
                    action,
                    direction,
                    protocol,
                    src,
                    dst,
                    src_ports: if ports_ok { src_ports } else { Vec::new() },
                    dst_ports: if ports_ok { dst_ports } else { Vec::new() },
                    interface: iface.map(String::from),
                    program: program.map(String::from),
                    user,
                    unit: unit.map(String::from),
                    ..RuleSpec::default()
                }
            },
        )
}

fn rule_file() -> impl Strategy<Value = RuleFile> {
    prop::collection::vec(rule_spec(), 0..40).prop_map(|specs| RuleFile {
        default_policy: Action::Block,
        rules: specs
            .into_iter()
            .enumerate()
            .map(|(i, s)| RuleSpec {
                name: format!("r{i}"),
                ..s
            })
            .collect(),
        ..RuleFile::default()
    })
}

const PROGRAMS: &[&str] = &[
    "/usr/bin/curl",
    "/usr/local/bin/curl",
    "/opt/app/bin/x",
    "/usr/bin/wget",
    "/usr/bin/sub/dir/tool",
];

fn owner() -> impl Strategy<Value = Owner<'static>> {
    (
        prop::option::weighted(0.6, prop::sample::select(PROGRAMS)),
        prop::option::weighted(0.6, prop::sample::select(vec![0u32, 1000, 1001])),
        prop::option::weighted(0.5, prop::sample::select(vec!["nginx.service", "cron.service"])),
    )
        // A unit is known only with its program (it is read from the program's cgroup).
        .prop_map(|(program, uid, unit)| Owner {
            program,
            uid,
            unit: program.and(unit),
        })
}

fn meta() -> impl Strategy<Value = (PacketMeta, &'static str)> {
    (
        prop::option::weighted(0.9, prop::sample::select(ADDRS)),
        prop::option::weighted(0.9, prop::sample::select(ADDRS)),
        prop::option::weighted(0.9, prop::sample::select(vec![6u8, 17, 1, 58, 47])),
        prop::option::weighted(0.8, (prop::sample::select(PORTS), prop::sample::select(PORTS))),
        prop::sample::select(vec![
            Direction::In,
            Direction::Out,
            Direction::Local,
            Direction::Unknown,
        ]),
        prop::sample::select(vec!["eth0", "eth1"]),
    )
        .prop_map(|(src, dst, proto, ports, direction, iface)| {
            let mut m = PacketMeta::new(7, 60, 60, LinkType::Ethernet);
            m.src_ip = src.map(|s| s.parse().unwrap());
            m.dst_ip = dst.map(|s| s.parse().unwrap());
            m.protocol = proto.map(IpProto);
            if let Some((s, d)) = ports {
                m.src_port = Some(s);
                m.dst_port = Some(d);
            } else {
                m.fragment = Fragment {
                    is_fragment: true,
                    offset: 10,
                    more_fragments: false,
                };
            }
            m.direction = direction;
            (m, iface)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn index_agrees_with_linear_scan(
        file in rule_file(),
        packets in prop::collection::vec((meta(), owner()), 1..24),
    ) {
        let set = RuleSet::compile(file, None).unwrap();
        for ((m, iface), owner) in &packets {
            let owner = *owner;
            let linear = set.matching_rule_linear(m, iface, owner);
            prop_assert_eq!(
                set.matching_rule_with_owner(m, iface, owner),
                linear,
                "packet {:?} on {} of {:?}",
                m,
                iface,
                owner
            );
            let verdict = set.evaluate_with_owner(m, iface, owner);
            prop_assert_eq!(verdict.rule, linear);
            prop_assert_eq!(set.explain_with_owner(m, iface, owner).verdict, verdict);
            // Without an owner, rules by user or program never match.
            let blind = set.matching_rule_linear(m, iface, Owner::UNKNOWN);
            prop_assert_eq!(set.matching_rule(m, iface), blind);
            if let Some(id) = blind {
                let rule = &set.rules()[id.index()];
                prop_assert!(rule.user.is_none() && rule.program.is_none() && rule.unit.is_none());
            }
        }
    }
}

#[test]
fn large_synthetic_set_agrees_with_linear_scan_and_the_ceiling_rules() {
    let big = RuleSet::compile(synthetic_rules(3_000), None).unwrap();
    let small = RuleSet::compile(synthetic_rules(10), None).unwrap();
    let srcs = [
        "192.168.1.1",
        "10.3.4.5",
        "203.0.113.9",
        "198.18.0.1",
        "198.18.1.7",
        "198.19.0.3",
        "fd5e:cafe:0:1::9",
        "2001:db8:3:4::5",
    ];
    let dsts = [
        "10.200.0.5",
        "203.0.113.201",
        "198.19.0.1",
        "fd5e:cafe::1:2",
        "2001:db8:ffff::1",
    ];
    let mut checked = 0;
    for s in srcs {
        for d in dsts {
            for proto in [IpProto::TCP, IpProto::UDP, IpProto::ICMP, IpProto::ICMPV6] {
                for port in [22, 53, 80, 123, 443, 5050, 8080, 8443] {
                    let mut m = packet(s, d, proto, Some((40000, port)));
                    for dir in [Direction::In, Direction::Out] {
                        m.direction = dir;
                        assert_eq!(
                            big.matching_rule(&m, "eth0"),
                            big.matching_rule_linear(&m, "eth0", Owner::UNKNOWN),
                            "{m:?}"
                        );
                        checked += 1;
                    }
                    // Traffic outside the synthetic ranges gets the ceiling verdict in both sets.
                    if !s.starts_with("198.1")
                        && !s.starts_with("fd5e")
                        && !d.starts_with("198.1")
                        && !d.starts_with("fd5e")
                    {
                        assert_eq!(
                            big.evaluate(&m, "eth0").action,
                            small.evaluate(&m, "eth0").action,
                            "{m:?}"
                        );
                    }
                }
            }
        }
    }
    assert_eq!(checked, 8 * 5 * 4 * 8 * 2);
}
