//! netwarden: a personal firewall monitor for Linux.
//!
//! The engine (this library) captures packets with libpcap, parses them, evaluates them against ordered
//! rules, runs detection, writes the audit log and drives kernel enforcement. The desktop app (`ui`, feature
//! `gui`) and the headless CLI are two thin front ends over it.

pub mod audit;
pub mod blocklist;
pub mod cli;
pub mod detect;
pub mod enforce;
pub mod event;
pub mod packet;
pub mod rules;
