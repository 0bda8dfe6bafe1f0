#![allow(dead_code)]

pub mod netns;
