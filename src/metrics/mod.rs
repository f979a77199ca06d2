//! Metric sources queried by the analysis.

pub mod prometheus;
