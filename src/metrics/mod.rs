//! Metric sources queried by the analysis.

pub mod builtin;
pub mod prometheus;
pub mod template;
