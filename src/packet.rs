//! Frame parsing: link-type dispatch and `etherparse` behind a small owned `PacketMeta`.

pub mod meta;

pub use meta::*;
