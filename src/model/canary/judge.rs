//! The canary analysis: during a pause, whether the canary hosts may go on.
//!
//! Pure: the engine gathers a [`GroupWindow`] for the canary hosts and one for
//! the hosts still on the old release, and [`analyse`] judges them against
//! [`Thresholds`]. No data never passes: it is [`Verdict::Inconclusive`], which
//! pauses for the operator.

use std::fmt;
use std::time::Duration;

use crate::model::sample::{AppSample, HealthSample, HealthStatus};

pub const DEFAULT_MIN_HEALTH_PASS_RATE: f64 = 1.0;
/// A relative limit never asks for less than one point of error ratio: a
/// baseline at 0% would otherwise fail a canary for its first error.
pub const DEFAULT_RELATIVE_FLOOR_ERROR_RATE: f64 = 0.01;
/// Likewise for error log lines: two in a minute against none is noise.
pub const DEFAULT_RELATIVE_FLOOR_LINES_PER_MIN: f64 = 2.0;
/// A relative latency limit is never less than the baseline plus this. Two
/// healthy hosts differ by tens of milliseconds from one window to the next (a
/// round trip through SSH, a GC pause, a busy neighbour), so a factor alone
/// would fail a 5 ms canary against a 2 ms baseline; 50 ms is above that
/// jitter and below what a user notices. It is added to the baseline rather
/// than being a floor of the limit so that `max_relative = 1` still leaves
/// room above a slow baseline.
pub const DEFAULT_RELATIVE_LATENCY_MARGIN: Duration = Duration::from_millis(50);
/// An error ratio over fewer requests says more about luck than the release.
pub const DEFAULT_MIN_REQUESTS: u64 = 10;

/// Limits a canary host must stay within during a pause. `None` switches a
/// check off; a check that is on and has no data makes the analysis
/// inconclusive.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// Highest share of a canary host's requests that may fail (0.01 = 1%),
    /// from the app's counters. Default: off.
    pub max_error_rate: Option<f64>,
    /// Highest latency of a canary host over the window, in milliseconds:
    /// the app's own quantile (`metrics.latency`) when there is one, else the
    /// median health-probe latency. The median, because a window holds a few
    /// dozen probes at most: a high quantile would be one probe. Default: off.
    pub max_latency_ms: Option<u64>,
    /// A canary host's error ratio, error lines per minute and latency may be
    /// at most this factor of the baseline group's (2.0 = twice), and never
    /// less than the floors below. Default: off.
    pub max_relative: Option<f64>,
    /// Lowest share of a canary host's health probes that must pass; probes
    /// that got no answer count as failed. Default 1.0: any failed probe
    /// fails the canary. `None` when the environment has no `[health]`.
    pub min_health_pass_rate: Option<f64>,
    /// Highest error log lines per minute on a canary host. Default: off.
    pub max_error_lines_per_min: Option<f64>,
    /// Default [`DEFAULT_RELATIVE_FLOOR_ERROR_RATE`].
    pub relative_floor_error_rate: f64,
    /// Default [`DEFAULT_RELATIVE_FLOOR_LINES_PER_MIN`].
    pub relative_floor_lines_per_min: f64,
    /// Default [`DEFAULT_RELATIVE_LATENCY_MARGIN`].
    pub relative_latency_margin: Duration,
    /// Fewer requests than this in the window: no error ratio for that host
    /// (or for the baseline group as a whole). Default [`DEFAULT_MIN_REQUESTS`].
    pub min_requests: u64,
    /// The data the config promises; see [`Expects`].
    pub expects: Expects,
}

/// Which data sources the config sets up, so that one that stays silent is
/// missing data rather than a check that quietly does not apply. With none
/// expected (the default), a comparison runs when some host has that kind of
/// data, which is how tests of the pure analysis use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Expects {
    /// `[metrics] prometheus` is set: request counters must come in, and
    /// `max_relative` compares error rates.
    pub requests: bool,
    /// `[logs]` names files or a command and sets `error_pattern`: error
    /// lines must be counted, and `max_relative` compares them.
    pub error_lines: bool,
    /// `metrics.latency` is set: latency is the app's own, never the probes'
    /// (a missing reading is missing, not a reason to judge something else).
    pub app_latency: bool,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_error_rate: None,
            max_latency_ms: None,
            max_relative: None,
            min_health_pass_rate: Some(DEFAULT_MIN_HEALTH_PASS_RATE),
            max_error_lines_per_min: None,
            relative_floor_error_rate: DEFAULT_RELATIVE_FLOOR_ERROR_RATE,
            relative_floor_lines_per_min: DEFAULT_RELATIVE_FLOOR_LINES_PER_MIN,
            relative_latency_margin: DEFAULT_RELATIVE_LATENCY_MARGIN,
            min_requests: DEFAULT_MIN_REQUESTS,
            expects: Expects::default(),
        }
    }
}

impl Thresholds {
    /// For the config layer, which adds the file position.
    pub fn validate(&self) -> Result<(), String> {
        let share = |key: &str, v: Option<f64>| match v {
            Some(v) if !(0.0..=1.0).contains(&v) => Err(format!(
                "{key} = {v} must be a share from 0 to 1 (0.01 is 1%)"
            )),
            _ => Ok(()),
        };
        share("max_error_rate", self.max_error_rate)?;
        share("min_health_pass_rate", self.min_health_pass_rate)?;
        if self.max_latency_ms == Some(0) {
            return Err("max_latency_ms = 0 would fail every canary; it must be above 0".into());
        }
        if let Some(r) = self.max_relative.filter(|r| !r.is_finite() || *r < 1.0) {
            return Err(format!(
                "max_relative = {r} must be 1 or more (a factor of the baseline: 2.0 allows twice its errors)"
            ));
        }
        let non_negative = [
            ("max_error_lines_per_min", self.max_error_lines_per_min),
            (
                "relative_floor_error_rate",
                Some(self.relative_floor_error_rate),
            ),
            (
                "relative_floor_lines_per_min",
                Some(self.relative_floor_lines_per_min),
            ),
        ];
        for (key, v) in non_negative {
            if let Some(v) = v.filter(|v| !v.is_finite() || *v < 0.0) {
                return Err(format!("{key} = {v} must be 0 or more"));
            }
        }
        Ok(())
    }
}

/// One health probe.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub healthy: bool,
    /// `None` when the probe got no answer.
    pub latency: Option<Duration>,
    /// What the probe said (`HTTP 503`), shown when it failed.
    pub detail: String,
}

impl From<&HealthSample> for Probe {
    fn from(s: &HealthSample) -> Self {
        Probe {
            healthy: s.status == HealthStatus::Healthy,
            latency: s.latency,
            detail: s.detail.clone(),
        }
    }
}

/// How much the app's request and error counters grew over the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Requests {
    pub total: f64,
    pub errors: f64,
}

impl Requests {
    /// How much the counters grew from one reading to the next. A counter
    /// that went down was reset (the app restarted between the readings): its
    /// new value is all growth, as PromQL's `increase` has it. Added up over
    /// a window's readings, a canary that crash-loops still shows the errors
    /// it served between restarts instead of having no error rate at all.
    pub fn step(prev: &AppSample, next: &AppSample) -> Requests {
        let grown = |a: f64, b: f64| if b >= a { b - a } else { b };
        Requests {
            total: grown(prev.requests_total, next.requests_total),
            errors: grown(prev.errors_total, next.errors_total),
        }
    }

    pub(super) fn ratio(self, min_requests: u64) -> Option<f64> {
        (self.total > 0.0 && self.total >= min_requests as f64)
            .then(|| (self.errors / self.total).min(1.0))
    }
}

impl std::ops::Add for Requests {
    type Output = Requests;

    fn add(self, other: Requests) -> Requests {
        Requests {
            total: self.total + other.total,
            errors: self.errors + other.errors,
        }
    }
}

/// What one host showed during the analysis window.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HostWindow {
    pub host: String,
    pub probes: Vec<Probe>,
    /// `None` when its logs were not followed (no `[logs]`, a configured file
    /// that does not exist, the follow was down), which is not the same as a
    /// quiet log.
    pub error_lines_per_min: Option<f64>,
    /// `None` without `[metrics]`, before two readings, or when the page has
    /// stopped answering.
    pub requests: Option<Requests>,
    /// The app's own latency (`metrics.latency`), averaged over the window's
    /// readings, in milliseconds; judged instead of probe latency.
    pub app_latency_ms: Option<f64>,
    /// Why a figure above is `None`, when the gatherer knows.
    pub gaps: Gaps,
    /// What the operator should know whatever the verdict: lines of the
    /// metrics page that could not be read.
    pub notes: Vec<String>,
}

/// Why a host has no figure, in words for the operator ("log file
/// /srv/a/log/app.log does not exist on web-1"); `None` falls back to a
/// plain "no data" naming the host.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Gaps {
    pub logs: Option<String>,
    pub requests: Option<String>,
    pub app_latency: Option<String>,
}

impl HostWindow {
    pub fn new(host: impl Into<String>) -> Self {
        HostWindow {
            host: host.into(),
            ..HostWindow::default()
        }
    }

    pub(super) fn pass_rate(&self) -> Result<f64, String> {
        if self.probes.is_empty() {
            return Err(format!("no health probe of {} in the window", self.host));
        }
        let pass = self.probes.iter().filter(|p| p.healthy).count();
        Ok(pass as f64 / self.probes.len() as f64)
    }

    pub(super) fn error_ratio(&self, min_requests: u64) -> Result<f64, String> {
        match self.requests {
            None => Err(self.gaps.requests.clone().unwrap_or_else(|| {
                format!(
                    "no request counters from {} in the window (they come from [metrics] prometheus)",
                    self.host
                )
            })),
            Some(r) => r.ratio(min_requests).ok_or_else(|| {
                if r.total <= 0.0 {
                    format!("{} served no requests in the window, so it has no error rate", self.host)
                } else {
                    format!(
                        "{} served {:.0} requests in the window, fewer than the {min_requests} an error rate needs (min_requests)",
                        self.host, r.total
                    )
                }
            }),
        }
    }

    pub(super) fn error_lines(&self) -> Result<f64, String> {
        self.error_lines_per_min.ok_or_else(|| {
            self.gaps.logs.clone().unwrap_or_else(|| {
                format!("the logs of {} were not followed in the window", self.host)
            })
        })
    }

    pub(super) fn app_latency(&self) -> Result<f64, String> {
        self.app_latency_ms.ok_or_else(|| {
            self.gaps.app_latency.clone().unwrap_or_else(|| {
                format!(
                    "no latency reading (metrics.latency) from {} in the window",
                    self.host
                )
            })
        })
    }

    pub(super) fn probe_latency(&self) -> Result<f64, String> {
        median_ms(&self.probes)
            .ok_or_else(|| format!("no answered health probe of {} in the window", self.host))
    }
}

/// A group of hosts over the same window: the canary hosts, or the baseline
/// (the hosts still on the old release).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GroupWindow {
    pub hosts: Vec<HostWindow>,
}

impl GroupWindow {
    pub(super) fn pass_rate(&self) -> Option<f64> {
        let (pass, n) = self
            .hosts
            .iter()
            .flat_map(|h| &h.probes)
            .fold((0usize, 0usize), |(pass, n), p| {
                (pass + usize::from(p.healthy), n + 1)
            });
        (n > 0).then(|| pass as f64 / n as f64)
    }

    /// Pooled over hosts, so a quiet host does not weigh as much as a busy one.
    pub(super) fn requests(&self) -> Option<Requests> {
        self.hosts
            .iter()
            .filter_map(|h| h.requests)
            .reduce(|a, r| a + r)
    }

    pub(super) fn error_ratio(&self, min_requests: u64) -> Option<f64> {
        self.requests()?.ratio(min_requests)
    }

    /// The group's figure as the mean over the hosts that have one.
    pub(super) fn mean(&self, figure: impl Fn(&HostWindow) -> Option<f64>) -> Option<f64> {
        let v: Vec<f64> = self.hosts.iter().filter_map(figure).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    }

    pub(super) fn mean_error_lines(&self) -> Option<f64> {
        self.mean(|h| h.error_lines_per_min)
    }

    pub(super) fn mean_app_latency(&self) -> Option<f64> {
        self.mean(|h| h.app_latency_ms)
    }

    /// Pooled over the group's probes: a few dozen per host at most.
    pub(super) fn probe_median(&self) -> Option<f64> {
        let all: Vec<Probe> = self.hosts.iter().flat_map(|h| h.probes.clone()).collect();
        median_ms(&all)
    }

    pub(super) fn has_requests(&self) -> bool {
        self.hosts.iter().any(|h| h.requests.is_some())
    }

    pub(super) fn has_error_lines(&self) -> bool {
        self.hosts.iter().any(|h| h.error_lines_per_min.is_some())
    }

    pub(super) fn has_app_latency(&self) -> bool {
        self.hosts.iter().any(|h| h.app_latency_ms.is_some())
    }

    pub(super) fn has_answered_probes(&self) -> bool {
        self.hosts
            .iter()
            .any(|h| h.probes.iter().any(|p| p.latency.is_some()))
    }

    /// Why the baseline has no `what` to compare with, naming its hosts'
    /// own reasons where they have one.
    pub(super) fn gap(
        &self,
        what: &str,
        host_why: impl Fn(&HostWindow) -> Option<String>,
    ) -> String {
        if self.hosts.is_empty() {
            return format!(
                "no baseline: no host is left on the old release to compare {what} with (max_relative)"
            );
        }
        let whys: Vec<String> = self.hosts.iter().filter_map(host_why).collect();
        if whys.is_empty() {
            format!("the baseline has no {what} to compare with (max_relative)")
        } else {
            format!(
                "the baseline has no {what} to compare with (max_relative): {}",
                whys.join("; ")
            )
        }
    }
}

/// What a breach was measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    HealthPassRate,
    ErrorRate,
    RelativeErrorRate,
    Latency,
    /// From `metrics.latency` (a quantile the app reports).
    AppLatency,
    /// Median probe latency against the baseline's.
    RelativeLatency,
    /// `metrics.latency` against the baseline's.
    RelativeAppLatency,
    ErrorLines,
    RelativeErrorLines,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::HealthPassRate => "health pass rate",
            Metric::ErrorRate => "error rate",
            Metric::RelativeErrorRate => "error rate against the baseline",
            Metric::Latency => "median probe latency",
            Metric::AppLatency => "latency (metrics.latency)",
            Metric::RelativeLatency => "median probe latency against the baseline",
            Metric::RelativeAppLatency => "latency (metrics.latency) against the baseline",
            Metric::ErrorLines => "error log lines",
            Metric::RelativeErrorLines => "error log lines against the baseline",
        }
    }

    /// The setting that holds the threshold, so an operator knows what to tune.
    pub fn setting(self) -> &'static str {
        match self {
            Metric::HealthPassRate => "min_health_pass_rate",
            Metric::ErrorRate => "max_error_rate",
            Metric::RelativeErrorRate
            | Metric::RelativeErrorLines
            | Metric::RelativeLatency
            | Metric::RelativeAppLatency => "max_relative",
            Metric::Latency | Metric::AppLatency => "max_latency_ms",
            Metric::ErrorLines => "max_error_lines_per_min",
        }
    }

    /// True when the value must stay at or above the threshold.
    pub fn is_minimum(self) -> bool {
        self == Metric::HealthPassRate
    }

    /// Whether `value` is on the wrong side of `limit`.
    pub(super) fn exceeds(self, value: f64, limit: f64) -> bool {
        if self.is_minimum() {
            value < limit
        } else {
            value > limit
        }
    }

    /// The value in this metric's unit: `20.0%`, `350 ms`, `12.0/min`.
    pub fn format(self, value: f64) -> String {
        match self {
            Metric::HealthPassRate | Metric::ErrorRate | Metric::RelativeErrorRate => {
                percent(value)
            }
            Metric::Latency
            | Metric::AppLatency
            | Metric::RelativeLatency
            | Metric::RelativeAppLatency => format!("{value:.0} ms"),
            Metric::ErrorLines | Metric::RelativeErrorLines => format!("{value:.1}/min"),
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

pub(super) fn percent(ratio: f64) -> String {
    let p = ratio * 100.0;
    if p == p.round() {
        format!("{p:.0}%")
    } else if p < 1.0 {
        format!("{p:.2}%")
    } else {
        format!("{p:.1}%")
    }
}

/// The outcome of one analysis window.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Every check that is on had data and stayed within its threshold.
    Pass { summary: String },
    /// The canary must be rolled back. `value` and `threshold` are in the
    /// metric's unit (ratios as 0..1, milliseconds, lines per minute); for a
    /// relative metric the threshold is the effective limit.
    Breach {
        metric: Metric,
        value: f64,
        threshold: f64,
        /// The worst canary host, for the console to show its last log lines.
        host: Option<String>,
        detail: String,
    },
    /// Not enough data to judge: the change waits for the operator.
    Inconclusive { why: String },
}

impl Verdict {
    pub fn is_pass(&self) -> bool {
        matches!(self, Verdict::Pass { .. })
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Pass { summary } => write!(f, "canary analysis passed: {summary}"),
            Verdict::Breach {
                metric,
                value,
                threshold,
                host,
                detail,
            } => {
                f.write_str("canary breach")?;
                if let Some(host) = host {
                    write!(f, " on {host}")?;
                }
                write!(
                    f,
                    ": {metric} {} is {} the threshold {} ({})",
                    metric.format(*value),
                    if metric.is_minimum() {
                        "below"
                    } else {
                        "above"
                    },
                    metric.format(*threshold),
                    metric.setting()
                )?;
                if !detail.is_empty() {
                    write!(f, "; {detail}")?;
                }
                Ok(())
            }
            Verdict::Inconclusive { why } => write!(f, "canary analysis inconclusive: {why}"),
        }
    }
}

pub(super) fn median_ms(probes: &[Probe]) -> Option<f64> {
    let mut ms: Vec<f64> = probes
        .iter()
        .filter_map(|p| p.latency)
        .map(|l| l.as_secs_f64() * 1000.0)
        .collect();
    if ms.is_empty() {
        return None;
    }
    ms.sort_by(f64::total_cmp);
    let mid = ms.len() / 2;
    Some(if ms.len().is_multiple_of(2) {
        (ms[mid - 1] + ms[mid]) / 2.0
    } else {
        ms[mid]
    })
}
