//! Packet sources: a live device (or `any`) and an offline pcap/pcapng file, both through libpcap, behind one
//! `PacketSource` trait so the engine's loop, and the tests, treat them alike.

pub mod source;

pub use source::*;
