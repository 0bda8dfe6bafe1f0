//! Helpers shared by the end-to-end tests: frame builders and capture-file writers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod frames;
pub mod netns;
pub mod pcapfile;
