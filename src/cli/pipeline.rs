//! `run` and `replay` feeding the pipelines people already run: `--syslog`, `--journald` and `--metrics`.
//! Everything here is checked and started before capture starts, so a bad URL or address is exit 2 with
//! nothing captured; it runs on the front end's thread or threads of its own, never on the capture path.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;

use super::CliError;
use netwarden::engine::EngineStats;
use netwarden::event::Event;
use netwarden::forward::{Destination, Forwarder, SyslogTarget, journald};
use netwarden::metrics::{Metrics, MetricsServer, parse_listen_addr};
use netwarden::rules::SharedRules;

/// How long queued events may still be sent when the run stops.
const FORWARD_GRACE: Duration = Duration::from_secs(2);

/// When to log events to journald.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum JournaldMode {
    /// When running as a systemd service whose stderr goes to the journal, and journald's socket exists.
    #[default]
    Auto,
    /// Always (an error if journald's socket does not exist).
    On,
    Off,
}

/// Pipeline options of `run` and `replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct PipelineArgs {
    /// Send denied and suspicious events to syslog as RFC 5424 messages: udp://HOST[:PORT],
    /// tcp://HOST[:PORT] (octet-counted frames) or unix:///dev/log (port 514 when left out).
    #[arg(long, value_name = "URL")]
    pub syslog: Option<String>,
    /// Log denied and suspicious events to journald with structured fields (NETWARDEN_SRC, ..). `auto`:
    /// when running as a systemd service whose stderr is the journal.
    #[arg(long, value_enum, default_value_t = JournaldMode::Auto, value_name = "WHEN")]
    pub journald: JournaldMode,
    /// journald's native-protocol socket.
    #[arg(long, hide = true, value_name = "PATH", default_value = journald::DEFAULT_SOCKET)]
    pub journald_socket: PathBuf,
    /// Serve Prometheus metrics at http://ADDR/metrics. ADDR is IP:PORT (127.0.0.1:9911) or a port on
    /// 127.0.0.1; any other address is reachable from other hosts (a warning says so).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
    /// When the run ends, keep serving /metrics until the final counts have been scraped once, for at
    /// most SECS (so a scraper gets the last totals).
    #[arg(long, value_name = "SECS", default_value_t = 0, requires = "metrics")]
    pub metrics_linger: u64,
}

/// The running syslog/journald forwarders and metrics server of one `run` or `replay`.
pub struct Pipelines {
    forwarders: Vec<Forwarder>,
    metrics: Option<(Arc<Metrics>, MetricsServer)>,
    linger: Duration,
}

fn bad(e: impl std::fmt::Display) -> CliError {
    CliError::BadInput(anyhow!("{e}"))
}

impl Pipelines {
    /// Checks every option, then opens the sockets and starts the threads.
    ///
    /// # Errors
    /// `BadInput` (exit 2) for a malformed URL or address, a unix socket that does not exist, an address
    /// that cannot be bound, or `--journald on` without journald.
    pub fn start(args: &PipelineArgs, rules: &SharedRules) -> Result<Self, CliError> {
        // Parse everything before opening anything.
        let syslog = args
            .syslog
            .as_deref()
            .map(SyslogTarget::parse)
            .transpose()
            .map_err(bad)?;
        let metrics_addr: Option<SocketAddr> = args
            .metrics
            .as_deref()
            .map(parse_listen_addr)
            .transpose()
            .map_err(bad)?;
        let journald = match args.journald {
            JournaldMode::Off => false,
            JournaldMode::On => {
                if !journald::socket_exists(&args.journald_socket) {
                    return Err(bad(format_args!(
                        "--journald on: no journald socket at {}",
                        args.journald_socket.display()
                    )));
                }
                true
            }
            JournaldMode::Auto => {
                journald::stderr_is_journal() && journald::socket_exists(&args.journald_socket)
            }
        };
        let mut destinations: Vec<Destination> = syslog.into_iter().map(Destination::Syslog).collect();
        if journald {
            destinations.push(Destination::Journald(args.journald_socket.clone()));
        }
        let mut forwarders = Vec::with_capacity(destinations.len());
        for destination in destinations {
            let forwarder = Forwarder::start(destination).map_err(bad)?;
            if let Some(warning) = forwarder.warning() {
                eprintln!("netwarden: warning: {warning}");
            }
            eprintln!(
                "netwarden: sending denied and suspicious events to {}",
                forwarder.destination()
            );
            forwarders.push(forwarder);
        }
        let metrics = match metrics_addr {
            None => None,
            Some(addr) => {
                let metrics = Metrics::new(Arc::clone(rules));
                for forwarder in &forwarders {
                    metrics.add_forwarder(forwarder.destination().to_string(), forwarder.counters());
                }
                let server = MetricsServer::start(addr, Arc::clone(&metrics)).map_err(bad)?;
                let bound = server.local_addr();
                if !bound.ip().is_loopback() {
                    eprintln!(
                        "netwarden: warning: metrics on {bound} are reachable from other hosts (no authentication); \
                         use 127.0.0.1:{} to keep them local",
                        bound.port()
                    );
                }
                eprintln!("netwarden: metrics at http://{bound}/metrics");
                Some((metrics, server))
            }
        };
        Ok(Self {
            forwarders,
            metrics,
            linger: Duration::from_secs(args.metrics_linger),
        })
    }

    /// True when events go to syslog or journald (so the engine must deliver the notable ones).
    #[must_use]
    pub fn forwarding(&self) -> bool {
        !self.forwarders.is_empty()
    }

    /// The metrics registry, for the enforcement thread's ban counts.
    #[must_use]
    pub fn metrics(&self) -> Option<Arc<Metrics>> {
        self.metrics.as_ref().map(|(metrics, _)| Arc::clone(metrics))
    }

    /// Serves the engine's counters from now on.
    pub fn attach(&self, stats: Arc<EngineStats>) {
        if let Some((metrics, _)) = &self.metrics {
            metrics.attach_engine(stats);
        }
    }

    /// Forwards `event` if it is denied or suspicious; never waits.
    pub fn offer(&self, event: &Event) {
        for forwarder in &self.forwarders {
            forwarder.offer(event);
        }
    }

    /// After the engine was joined: sends what is queued (at most 2 s), prints each forwarder's totals,
    /// marks the metrics final, serves them until scraped when `--metrics-linger` asks, and stops.
    pub fn finish(self) {
        for forwarder in self.forwarders {
            let destination = forwarder.destination().to_string();
            let (sent, dropped) = forwarder.finish(FORWARD_GRACE);
            eprintln!("netwarden: {destination}: {sent} events sent, {dropped} dropped");
        }
        if let Some((metrics, server)) = self.metrics {
            metrics.finish();
            if !self.linger.is_zero() {
                if server.wait_for_final_scrape(self.linger) {
                    eprintln!("netwarden: final metrics scraped");
                } else {
                    eprintln!(
                        "netwarden: final metrics not scraped within {} s",
                        self.linger.as_secs()
                    );
                }
            }
            server.stop();
        }
    }
}
