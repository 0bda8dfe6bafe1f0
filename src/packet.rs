//! Frame parsing: link-type dispatch and `etherparse` behind a small owned `PacketMeta`.

pub mod direction;
pub mod layers;
pub mod linktype;
pub mod meta;

pub use direction::LocalAddrs;
pub use layers::{LayerInfo, describe, hex_dump};
pub use linktype::parse;
pub use meta::*;
