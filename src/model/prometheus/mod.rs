//! The app's own metrics, from its Prometheus or OpenMetrics page: a parser
//! that reads every line it can and counts the rest, series selectors, and
//! the readings a canary judges (counters, latency from a gauge, a summary
//! quantile or histogram buckets).

mod histogram;
mod read;
mod selector;
mod text;

pub use histogram::{Buckets, Growth, bucket_quantile};
pub use read::{Absent, LatencyQuery, LatencyRead, counter, latency, unreadable_note};
pub use selector::{Selector, SelectorError};
pub use text::{Family, Kind, Page, Sample, Unreadable, parse};

#[cfg(test)]
mod tests;
