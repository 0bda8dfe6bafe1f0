//! Live counters of an engine run, shared lock-free between the capture thread and its front end.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::capture::KernelStats;
use crate::packet::PacketMeta;
use crate::rules::Action;

/// Counters updated by the capture thread per packet (relaxed atomics: each is an independent tally).
#[derive(Debug, Default)]
pub struct EngineStats {
    packets: AtomicU64,
    bytes: AtomicU64,
    allowed: AtomicU64,
    blocked: AtomicU64,
    logged: AtomicU64,
    allowed_bytes: AtomicU64,
    blocked_bytes: AtomicU64,
    logged_bytes: AtomicU64,
    malformed: AtomicU64,
    alerts: AtomicU64,
    display_dropped: AtomicU64,
    audit_errors: AtomicU64,
    kernel_received: AtomicU64,
    kernel_dropped: AtomicU64,
    kernel_if_dropped: AtomicU64,
    last_ts_micros: AtomicI64,
    times: Mutex<(Option<Instant>, Option<Instant>)>,
}

/// Counters the capture thread keeps without atomics between two `EngineStats::publish` calls.
#[derive(Debug, Default)]
pub(crate) struct LocalCounts {
    packets: u64,
    bytes: u64,
    allowed: u64,
    blocked: u64,
    logged: u64,
    allowed_bytes: u64,
    blocked_bytes: u64,
    logged_bytes: u64,
    malformed: u64,
    alerts: u64,
    last_ts_micros: i64,
}

impl LocalCounts {
    pub(crate) fn count(&mut self, meta: &PacketMeta, action: Action, alert: bool) {
        self.packets += 1;
        let bytes = u64::from(meta.wire_len);
        self.bytes += bytes;
        match action {
            Action::Allow => {
                self.allowed += 1;
                self.allowed_bytes += bytes;
            }
            Action::Block => {
                self.blocked += 1;
                self.blocked_bytes += bytes;
            }
            Action::Log => {
                self.logged += 1;
                self.logged_bytes += bytes;
            }
        }
        self.malformed += u64::from(meta.malformed.is_some());
        self.alerts += u64::from(alert);
        self.last_ts_micros = meta.ts_micros;
    }
}

/// A consistent-enough copy of the counters for display and summaries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StatsSnapshot {
    pub packets: u64,
    pub bytes: u64,
    pub allowed: u64,
    pub blocked: u64,
    pub logged: u64,
    /// Bytes on the wire of the allowed, blocked and logged packets (the stats plots split bytes by verdict).
    pub allowed_bytes: u64,
    pub blocked_bytes: u64,
    pub logged_bytes: u64,
    pub malformed: u64,
    pub alerts: u64,
    /// Events the front end was too slow to take (still counted, logged and fed to detection).
    pub display_dropped: u64,
    pub audit_errors: u64,
    pub kernel_received: u64,
    /// Packets the kernel dropped because the capture buffer was full (libpcap's `ps_drop`): lost to capture,
    /// not dropped by a firewall.
    pub kernel_dropped: u64,
    pub kernel_if_dropped: u64,
}

impl EngineStats {
    /// Adds what the capture thread counted since the last call and zeroes it. Plain counters per packet
    /// and one atomic add per field per tick: atomics on every packet cost ~7% of replay time.
    pub(crate) fn publish(&self, local: &mut LocalCounts) {
        let add = |counter: &AtomicU64, value: &mut u64| {
            if *value > 0 {
                counter.fetch_add(*value, Relaxed);
                *value = 0;
            }
        };
        add(&self.packets, &mut local.packets);
        add(&self.bytes, &mut local.bytes);
        add(&self.allowed, &mut local.allowed);
        add(&self.blocked, &mut local.blocked);
        add(&self.logged, &mut local.logged);
        add(&self.allowed_bytes, &mut local.allowed_bytes);
        add(&self.blocked_bytes, &mut local.blocked_bytes);
        add(&self.logged_bytes, &mut local.logged_bytes);
        add(&self.malformed, &mut local.malformed);
        add(&self.alerts, &mut local.alerts);
        if local.last_ts_micros != 0 {
            self.last_ts_micros.store(local.last_ts_micros, Relaxed);
        }
    }

    pub(crate) fn add_display_dropped(&self, n: u64) {
        self.display_dropped.fetch_add(n, Relaxed);
    }

    pub(crate) fn add_audit_error(&self) {
        self.audit_errors.fetch_add(1, Relaxed);
    }

    pub(crate) fn set_kernel(&self, k: KernelStats) {
        self.kernel_received.store(k.received, Relaxed);
        self.kernel_dropped.store(k.dropped, Relaxed);
        self.kernel_if_dropped.store(k.if_dropped, Relaxed);
    }

    pub(crate) fn mark_started(&self) {
        if let Ok(mut t) = self.times.lock() {
            t.0 = Some(Instant::now());
        }
    }

    pub(crate) fn mark_finished(&self) {
        if let Ok(mut t) = self.times.lock() {
            t.1 = Some(Instant::now());
        }
    }

    /// Wall time from the first read to the end of the run (or to now while running).
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        match self.times.lock() {
            Ok(t) => match *t {
                (Some(start), Some(end)) => end.duration_since(start),
                (Some(start), None) => start.elapsed(),
                _ => Duration::ZERO,
            },
            Err(_) => Duration::ZERO,
        }
    }

    /// Copies the counters.
    #[must_use]
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            packets: self.packets.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            allowed: self.allowed.load(Relaxed),
            blocked: self.blocked.load(Relaxed),
            logged: self.logged.load(Relaxed),
            allowed_bytes: self.allowed_bytes.load(Relaxed),
            blocked_bytes: self.blocked_bytes.load(Relaxed),
            logged_bytes: self.logged_bytes.load(Relaxed),
            malformed: self.malformed.load(Relaxed),
            alerts: self.alerts.load(Relaxed),
            display_dropped: self.display_dropped.load(Relaxed),
            audit_errors: self.audit_errors.load(Relaxed),
            kernel_received: self.kernel_received.load(Relaxed),
            kernel_dropped: self.kernel_dropped.load(Relaxed),
            kernel_if_dropped: self.kernel_if_dropped.load(Relaxed),
        }
    }
}

/// What `replay --summary` prints: totals, per-rule hits and speed.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    #[serde(flatten)]
    pub counts: StatsSnapshot,
    /// `(rule name, hits)` in rule order, then `("default", n)` for the default policy.
    pub rule_hits: Vec<(String, u64)>,
    pub elapsed_secs: f64,
    pub packets_per_sec: f64,
}

impl RunSummary {
    /// Builds a summary from the counters and the rule set's hit counters.
    #[must_use]
    pub fn new(stats: &EngineStats, rules: &crate::rules::RuleSet) -> Self {
        let counts = stats.snapshot();
        let elapsed = stats.elapsed().as_secs_f64();
        let mut rule_hits: Vec<(String, u64)> = rules
            .rules()
            .iter()
            .enumerate()
            .map(|(i, rule)| {
                let id = crate::rules::RuleId(u32::try_from(i).unwrap_or(u32::MAX));
                (rule.name.to_string(), rules.hits(id).count)
            })
            .collect();
        rule_hits.push(("default".into(), rules.default_hits().count));
        #[expect(clippy::cast_precision_loss, reason = "a rate for display")]
        let packets_per_sec = if elapsed > 0.0 {
            counts.packets as f64 / elapsed
        } else {
            0.0
        };
        Self {
            counts,
            rule_hits,
            elapsed_secs: elapsed,
            packets_per_sec,
        }
    }
}
