//! Readings of a host as plain data: a health probe's answer and the app's
//! counters. The monitor and the canary take them; neither owns them.

use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthStatus {
    Healthy,
    Unhealthy,
    /// No answer: the host is unreachable, the probe timed out, or nothing is
    /// deployed to probe. Never counted as healthy.
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HealthSample {
    pub at: SystemTime,
    pub status: HealthStatus,
    /// How long the probe took; `None` when it got no answer.
    pub latency: Option<Duration>,
    /// What the probe said (`HTTP 503`, a command's last line, an error).
    pub detail: String,
}

/// Counter readings from the app's Prometheus page (`[metrics]`): the sums of
/// the `requests` and `errors` series. Rates are derived from two or more.
#[derive(Debug, Clone, PartialEq)]
pub struct AppSample {
    pub at: SystemTime,
    pub requests_total: f64,
    pub errors_total: f64,
}
