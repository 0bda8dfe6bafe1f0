//! Helpers shared by the end-to-end tests: frame builders, capture-file writers and network namespaces.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod frames;
pub mod netns;
pub mod nspair;
pub mod pcapfile;
pub mod root;
