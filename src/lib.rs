//! netwarden: a personal firewall monitor for Linux.
//!
//! The engine (this library) captures packets with libpcap, parses them, evaluates them against ordered
//! rules, runs detection, writes the audit log and drives kernel enforcement. The desktop app (`ui`, feature
//! `gui`) and the headless CLI (in the binary) are two thin front ends over it.
//!
//! ```no_run
//! use netwarden::capture::SourceSpec;
//! use netwarden::engine::{Engine, EngineConfig, EngineMessage};
//! use netwarden::rules::RuleSet;
//!
//! let rules = RuleSet::load(std::path::Path::new("rules.ron"))?;
//! let source = SourceSpec::File { path: "traffic.pcap".into(), filter: None };
//! let engine = Engine::spawn(EngineConfig::new(source, netwarden::rules::shared(rules)))?;
//! while let Ok(EngineMessage::Events(events)) = engine.events.recv() {
//!     for event in events {
//!         println!("{} {:?}", event.verdict.action.name(), event.meta.src_ip);
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod attrib;
pub mod audit;
pub mod blocklist;
pub mod capture;
pub mod detect;
pub mod enforce;
pub mod engine;
pub mod event;
pub mod export;
pub mod filter;
pub mod flows;
pub mod forward;
pub mod metrics;
pub mod names;
pub mod packet;
pub mod rules;
pub mod text;
#[cfg(feature = "gui")]
pub mod ui;
pub mod whatif;
