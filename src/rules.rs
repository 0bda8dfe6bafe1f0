//! Rules: the RON model, validation, the compiled matcher, hit counters, lint and explain.

pub mod model;

pub use model::*;
