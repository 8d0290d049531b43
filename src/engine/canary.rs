//! Canary changes: the steps an operator writes (`["1", "pause 60s", "50%",
//! "pause", "100%"]`), what each step moves, and the analysis that decides,
//! during a pause, whether the canary hosts may go on.
//!
//! Pure: the engine gathers a [`GroupWindow`] for the canary hosts and one for
//! the hosts still on the old release (from the monitor or from its own
//! probes), and [`analyse`] judges them against [`Thresholds`]. No data never
//! passes: it is [`Verdict::Inconclusive`], which pauses for the operator.

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use crate::config::parse_duration;
use crate::model::HostCount;
use crate::monitor::{AppSample, HealthSample, HealthStatus};

/// What follows a move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseKind {
    /// Analysis runs this long, then the next step starts by itself.
    Timed(Duration),
    /// Analysis runs until the operator continues (or a breach ends it).
    Operator,
}

/// One step as written in `strategy.steps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CanaryStep {
    /// Switch hosts until this many run the new release (cumulative, not
    /// "this many more"), as Argo Rollouts' `setWeight` is.
    Move(HostCount),
    Pause(PauseKind),
}

impl CanaryStep {
    pub fn parse(s: &str) -> Result<CanaryStep, String> {
        let s = s.trim();
        let (word, rest) = s.split_once(char::is_whitespace).unwrap_or((s, ""));
        if word.eq_ignore_ascii_case("pause") {
            return match rest.trim() {
                "" => Ok(CanaryStep::Pause(PauseKind::Operator)),
                d => parse_duration(d).map(|d| CanaryStep::Pause(PauseKind::Timed(d))),
            };
        }
        if word.to_ascii_lowercase().starts_with("paus") {
            return Err(format!(
                "{s:?} is not a pause (write \"pause\" to wait for the operator, or \"pause 60s\")"
            ));
        }
        HostCount::parse(s).map(CanaryStep::Move).map_err(|e| {
            format!(
                "{e}; a step is a count (\"1\"), a percentage (\"25%\"), \"pause 60s\" or \"pause\""
            )
        })
    }

    fn is_all(self) -> bool {
        self == CanaryStep::Move(HostCount::Percent(100))
    }
}

impl fmt::Display for CanaryStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CanaryStep::Move(n) => write!(f, "{n}"),
            CanaryStep::Pause(PauseKind::Timed(d)) => {
                write!(f, "pause {}", crate::model::time::written_duration(*d))
            }
            CanaryStep::Pause(PauseKind::Operator) => f.write_str("pause"),
        }
    }
}

/// Reads `strategy.steps`. The rules keep a canary meaningful: it starts with
/// a move (a pause before it has nothing to watch), moves never shrink, and it
/// ends with `"100%"` and nothing after it (a pause there has no baseline left,
/// and a count would leave hosts behind once the environment grows).
pub fn parse_steps<S: AsRef<str>>(steps: &[S]) -> Result<Vec<CanaryStep>, String> {
    let parsed = steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            CanaryStep::parse(s.as_ref())
                .map_err(|e| format!("canary step {} ({:?}): {e}", i + 1, s.as_ref()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let written = |i: usize| steps[i].as_ref().trim();

    let Some(first) = parsed.first() else {
        return Err(
            "canary steps are empty: write at least one move ending with \"100%\", e.g. [\"1\", \"pause 60s\", \"100%\"]"
                .to_owned(),
        );
    };
    if let CanaryStep::Pause(_) = first {
        return Err(format!(
            "canary step 1 ({:?}) pauses before any host has moved: start with a count (\"1\") or a percentage (\"25%\")",
            written(0)
        ));
    }

    let mut last_count: Option<(usize, usize)> = None;
    let mut last_percent: Option<(usize, u8)> = None;
    let mut all_at: Option<usize> = None;
    for (i, step) in parsed.iter().enumerate() {
        if let Some(at) = all_at {
            return Err(format!(
                "canary step {} ({:?}) comes after step {} (\"100%\") has moved every host: nothing is left on the old release to move or compare with",
                i + 1,
                written(i),
                at + 1
            ));
        }
        match *step {
            CanaryStep::Move(HostCount::Count(n)) => {
                if let Some((j, _)) = last_count.filter(|&(_, prev)| n < prev) {
                    return Err(shrinks(i, written(i), j, written(j)));
                }
                last_count = Some((i, n));
            }
            CanaryStep::Move(HostCount::Percent(p)) => {
                if let Some((j, _)) = last_percent.filter(|&(_, prev)| p < prev) {
                    return Err(shrinks(i, written(i), j, written(j)));
                }
                last_percent = Some((i, p));
            }
            CanaryStep::Pause(_) => {}
        }
        if step.is_all() {
            all_at = Some(i);
        }
    }
    if all_at.is_none() {
        let (i, _) = parsed
            .iter()
            .enumerate()
            .rfind(|(_, s)| matches!(s, CanaryStep::Move(_)))
            .unwrap_or((0, first));
        return Err(format!(
            "the last canary move, step {} ({:?}), does not reach 100%: end the steps with \"100%\" so that every host gets the release",
            i + 1,
            written(i)
        ));
    }
    Ok(parsed)
}

fn shrinks(i: usize, s: &str, j: usize, prev_s: &str) -> String {
    format!(
        "canary step {} ({s:?}) moves fewer hosts than step {} ({prev_s:?}): steps give the new release to more hosts, never fewer",
        i + 1,
        j + 1
    )
}

/// One switch of a canary and the pauses after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Hosts on the new release once this stage has switched (cumulative).
    pub switched: usize,
    /// Positions in the change's host order that switch in this stage; empty
    /// when an earlier step already reached this step's target on an
    /// environment this small, in which case only the pauses remain.
    pub hosts: Range<usize>,
    /// Run in order after the switch; the analysis watches each one.
    pub pauses: Vec<PauseKind>,
}

/// What each step does on an environment of `total_hosts` hosts. A count and
/// a percentage can disagree (`"3"` then `"25%"` of 4 hosts), so targets are
/// held to never go down; a stage that neither moves a host nor pauses is
/// left out. With steps from [`parse_steps`], the last stage switches every
/// host.
pub fn moves(steps: &[CanaryStep], total_hosts: usize) -> Vec<Stage> {
    let mut stages: Vec<Stage> = Vec::new();
    if total_hosts == 0 {
        return stages;
    }
    let mut switched = 0;
    for step in steps {
        match *step {
            CanaryStep::Move(n) => {
                let target = n.of(total_hosts).max(switched);
                stages.push(Stage {
                    switched: target,
                    hosts: switched..target,
                    pauses: Vec::new(),
                });
                switched = target;
            }
            CanaryStep::Pause(kind) => {
                if let Some(stage) = stages.last_mut() {
                    stage.pauses.push(kind);
                }
            }
        }
    }
    stages.retain(|s| !s.hosts.is_empty() || !s.pauses.is_empty());
    stages
}

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

    fn ratio(self, min_requests: u64) -> Option<f64> {
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

    fn pass_rate(&self) -> Result<f64, String> {
        if self.probes.is_empty() {
            return Err(format!("no health probe of {} in the window", self.host));
        }
        let pass = self.probes.iter().filter(|p| p.healthy).count();
        Ok(pass as f64 / self.probes.len() as f64)
    }

    fn error_ratio(&self, min_requests: u64) -> Result<f64, String> {
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

    fn error_lines(&self) -> Result<f64, String> {
        self.error_lines_per_min.ok_or_else(|| {
            self.gaps.logs.clone().unwrap_or_else(|| {
                format!("the logs of {} were not followed in the window", self.host)
            })
        })
    }

    fn app_latency(&self) -> Result<f64, String> {
        self.app_latency_ms.ok_or_else(|| {
            self.gaps.app_latency.clone().unwrap_or_else(|| {
                format!(
                    "no latency reading (metrics.latency) from {} in the window",
                    self.host
                )
            })
        })
    }

    fn probe_latency(&self) -> Result<f64, String> {
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
    fn pass_rate(&self) -> Option<f64> {
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
    fn requests(&self) -> Option<Requests> {
        self.hosts
            .iter()
            .filter_map(|h| h.requests)
            .reduce(|a, r| a + r)
    }

    fn error_ratio(&self, min_requests: u64) -> Option<f64> {
        self.requests()?.ratio(min_requests)
    }

    /// The group's figure as the mean over the hosts that have one.
    fn mean(&self, figure: impl Fn(&HostWindow) -> Option<f64>) -> Option<f64> {
        let v: Vec<f64> = self.hosts.iter().filter_map(figure).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    }

    fn mean_error_lines(&self) -> Option<f64> {
        self.mean(|h| h.error_lines_per_min)
    }

    fn mean_app_latency(&self) -> Option<f64> {
        self.mean(|h| h.app_latency_ms)
    }

    /// Pooled over the group's probes: a few dozen per host at most.
    fn probe_median(&self) -> Option<f64> {
        let all: Vec<Probe> = self.hosts.iter().flat_map(|h| h.probes.clone()).collect();
        median_ms(&all)
    }

    fn has_requests(&self) -> bool {
        self.hosts.iter().any(|h| h.requests.is_some())
    }

    fn has_error_lines(&self) -> bool {
        self.hosts.iter().any(|h| h.error_lines_per_min.is_some())
    }

    fn has_app_latency(&self) -> bool {
        self.hosts.iter().any(|h| h.app_latency_ms.is_some())
    }

    fn has_answered_probes(&self) -> bool {
        self.hosts
            .iter()
            .any(|h| h.probes.iter().any(|p| p.latency.is_some()))
    }

    /// Why the baseline has no `what` to compare with, naming its hosts'
    /// own reasons where they have one.
    fn gap(&self, what: &str, host_why: impl Fn(&HostWindow) -> Option<String>) -> String {
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
    fn exceeds(self, value: f64, limit: f64) -> bool {
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

fn percent(ratio: f64) -> String {
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

enum Check {
    Off,
    Within(String),
    NoData(String),
    Breach(Verdict),
}

/// Judges one figure on every canary host: the worst host among those with
/// data breaches if it is past `limit`, whatever other hosts lack (a host at
/// 50% errors is rolled back even when its neighbour's scrape failed); else
/// any host without data makes the check inconclusive; else it is within.
fn judge<'a>(
    canary: &'a GroupWindow,
    m: Metric,
    limit: f64,
    figure: impl Fn(&HostWindow) -> Result<f64, String>,
    within: impl FnOnce(f64) -> String,
    detail: impl FnOnce(&'a HostWindow) -> String,
) -> Check {
    let mut missing = Vec::new();
    let mut worst: Option<(&HostWindow, f64)> = None;
    for h in &canary.hosts {
        match figure(h) {
            // A figure that is not a number is no figure.
            Ok(v) if v.is_nan() => {
                missing.push(format!("{} of {} is not a number", m.name(), h.host))
            }
            Ok(v) => {
                if worst.is_none_or(|(_, w)| m.exceeds(v, w)) {
                    worst = Some((h, v));
                }
            }
            Err(why) => missing.push(why),
        }
    }
    match worst {
        Some((host, value)) if m.exceeds(value, limit) => Check::Breach(Verdict::Breach {
            metric: m,
            value,
            threshold: limit,
            host: Some(host.host.clone()),
            detail: detail(host),
        }),
        _ if !missing.is_empty() => Check::NoData(missing.join("; ")),
        Some((_, value)) => Check::Within(within(value)),
        None => Check::NoData("no canary host to judge".to_owned()),
    }
}

/// `"baseline 2%"`, or nothing when the baseline has no such figure.
fn baseline_note(m: Metric, base: Option<f64>) -> String {
    base.map_or_else(String::new, |b| format!("baseline {}", m.format(b)))
}

fn joined(parts: &[String]) -> String {
    parts
        .iter()
        .filter(|p| !p.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join("; ")
}

fn requests_note(h: &HostWindow) -> String {
    h.requests.map_or_else(String::new, |r| {
        format!("{:.0} errors in {:.0} requests", r.errors, r.total)
    })
}

fn check_health(canary: &GroupWindow, baseline: &GroupWindow, t: &Thresholds) -> Check {
    let Some(min) = t.min_health_pass_rate else {
        return Check::Off;
    };
    let m = Metric::HealthPassRate;
    judge(
        canary,
        m,
        min,
        HostWindow::pass_rate,
        |v| format!("health {} (min {})", m.format(v), m.format(min)),
        |host| {
            let failed: Vec<&Probe> = host.probes.iter().filter(|p| !p.healthy).collect();
            let mut detail = format!("{} of {} probes failed", failed.len(), host.probes.len());
            if let Some(last) = failed.last().filter(|p| !p.detail.is_empty()) {
                detail.push_str(&format!(" (last: {})", last.detail));
            }
            joined(&[detail, baseline_note(m, baseline.pass_rate())])
        },
    )
}

fn check_error_rate(canary: &GroupWindow, baseline: &GroupWindow, t: &Thresholds) -> Check {
    let Some(max) = t.max_error_rate else {
        return Check::Off;
    };
    let m = Metric::ErrorRate;
    judge(
        canary,
        m,
        max,
        |h| h.error_ratio(t.min_requests),
        |v| format!("error rate {} (max {})", m.format(v), m.format(max)),
        |host| {
            joined(&[
                requests_note(host),
                baseline_note(m, baseline.error_ratio(t.min_requests)),
            ])
        },
    )
}

/// Where latency comes from: the app's own quantile when the config names
/// one (or, with nothing expected, when a canary host reports one), else the
/// health probes. Never both, and never the probes as a stand-in for a
/// configured quantile that did not come in.
#[derive(Clone, Copy)]
enum LatencySource {
    App,
    Probes,
}

fn latency_source(canary: &GroupWindow, t: &Thresholds) -> LatencySource {
    if t.expects.app_latency || canary.has_app_latency() {
        LatencySource::App
    } else {
        LatencySource::Probes
    }
}

fn check_latency(canary: &GroupWindow, baseline: &GroupWindow, t: &Thresholds) -> Check {
    let Some(max) = t.max_latency_ms else {
        return Check::Off;
    };
    let max = max as f64;
    match latency_source(canary, t) {
        LatencySource::App => {
            let m = Metric::AppLatency;
            judge(
                canary,
                m,
                max,
                HostWindow::app_latency,
                |v| format!("latency {} (max {})", m.format(v), m.format(max)),
                |_| baseline_note(m, baseline.mean_app_latency()),
            )
        }
        LatencySource::Probes => {
            let m = Metric::Latency;
            judge(
                canary,
                m,
                max,
                HostWindow::probe_latency,
                |v| format!("median latency {} (max {})", m.format(v), m.format(max)),
                |_| baseline_note(m, baseline.probe_median()),
            )
        }
    }
}

fn median_ms(probes: &[Probe]) -> Option<f64> {
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

fn check_error_lines(canary: &GroupWindow, baseline: &GroupWindow, t: &Thresholds) -> Check {
    let Some(max) = t.max_error_lines_per_min else {
        return Check::Off;
    };
    let m = Metric::ErrorLines;
    judge(
        canary,
        m,
        max,
        HostWindow::error_lines,
        |v| format!("error lines {} (max {})", m.format(v), m.format(max)),
        |_| baseline_note(m, baseline.mean_error_lines()),
    )
}

/// Error ratio, error lines and latency, each against the baseline. A
/// comparison runs when the config promises that kind of data (see
/// [`Expects`]) or some host has it, so a fleet without `[metrics]` is judged
/// on its logs and latency alone, and one whose metrics went silent is not
/// judged as if it had none.
fn check_relative(canary: &GroupWindow, baseline: &GroupWindow, t: &Thresholds) -> Vec<Check> {
    let Some(factor) = t.max_relative else {
        return vec![Check::Off];
    };
    let mut checks = Vec::new();
    if t.expects.requests || canary.has_requests() || baseline.has_requests() {
        let m = Metric::RelativeErrorRate;
        let floor = t.relative_floor_error_rate;
        checks.push(match baseline.error_ratio(t.min_requests) {
            None => Check::NoData(match baseline.requests() {
                Some(r) if !baseline.hosts.is_empty() => format!(
                    "the baseline served {:.0} requests in the window, fewer than the {} an error rate needs (min_requests), so there is no error rate to compare with",
                    r.total, t.min_requests
                ),
                _ => baseline.gap("error rate", |h| h.error_ratio(t.min_requests).err()),
            }),
            Some(base) => relative(
                canary,
                m,
                |h| h.error_ratio(t.min_requests),
                base,
                (base * factor).max(floor),
                format!("{factor}× the baseline, and never below {}", m.format(floor)),
                requests_note,
            ),
        });
    }
    if t.expects.error_lines || canary.has_error_lines() || baseline.has_error_lines() {
        let m = Metric::RelativeErrorLines;
        let floor = t.relative_floor_lines_per_min;
        checks.push(match baseline.mean_error_lines() {
            None => Check::NoData(baseline.gap("error log lines", |h| h.error_lines().err())),
            Some(base) => relative(
                canary,
                m,
                HostWindow::error_lines,
                base,
                (base * factor).max(floor),
                format!(
                    "{factor}× the baseline, and never below {}",
                    m.format(floor)
                ),
                |_| String::new(),
            ),
        });
    }
    let margin = t.relative_latency_margin.as_secs_f64() * 1000.0;
    let latency_rule = |m: Metric| {
        format!(
            "{factor}× the baseline, and never below the baseline + {}",
            m.format(margin)
        )
    };
    match latency_source(canary, t) {
        LatencySource::App => {
            let m = Metric::RelativeAppLatency;
            checks.push(match baseline.mean_app_latency() {
                None => Check::NoData(
                    baseline.gap("latency (metrics.latency)", |h| h.app_latency().err()),
                ),
                Some(base) => relative(
                    canary,
                    m,
                    HostWindow::app_latency,
                    base,
                    (base * factor).max(base + margin),
                    latency_rule(m),
                    |_| String::new(),
                ),
            });
        }
        // Without probes anywhere (no [health]) there is no latency to compare.
        LatencySource::Probes if canary.has_answered_probes() || baseline.has_answered_probes() => {
            let m = Metric::RelativeLatency;
            checks.push(match baseline.probe_median() {
                None => Check::NoData(baseline.gap("probe latency", |h| h.probe_latency().err())),
                Some(base) => relative(
                    canary,
                    m,
                    HostWindow::probe_latency,
                    base,
                    (base * factor).max(base + margin),
                    latency_rule(m),
                    |_| String::new(),
                ),
            });
        }
        LatencySource::Probes => {}
    }
    if checks.is_empty() {
        checks.push(Check::NoData(
            "max_relative is set but no host reported request counters, error log lines or latency"
                .into(),
        ));
    }
    checks
}

/// One comparison with the baseline; `limit` is the effective one (the
/// factor or the floor, whichever is higher), `rule` says how it was made.
fn relative<'a>(
    canary: &'a GroupWindow,
    m: Metric,
    figure: impl Fn(&HostWindow) -> Result<f64, String>,
    base: f64,
    limit: f64,
    rule: String,
    host_note: impl FnOnce(&'a HostWindow) -> String,
) -> Check {
    judge(
        canary,
        m,
        limit,
        figure,
        |v| {
            format!(
                "{} {} (baseline {}, max {})",
                m.name(),
                m.format(v),
                m.format(base),
                m.format(limit)
            )
        },
        |host| {
            joined(&[
                host_note(host),
                format!("baseline {}", m.format(base)),
                format!("the limit is {rule}"),
            ])
        },
    )
}

/// Judges the canary hosts over one window against the thresholds and the
/// baseline. A breach anywhere wins over missing data elsewhere: a canary
/// that fails one check needs no other to be rolled back.
///
/// Whatever the verdict, it also says which metrics pages had lines that
/// could not be read: a reader that skips lines is never silent about it.
pub fn analyse(canary: &GroupWindow, baseline: &GroupWindow, t: &Thresholds) -> Verdict {
    let notes: Vec<&str> = canary
        .hosts
        .iter()
        .chain(&baseline.hosts)
        .flat_map(|h| h.notes.iter().map(String::as_str))
        .collect();
    let mut verdict = judge_windows(canary, baseline, t);
    if !notes.is_empty() {
        let text = match &mut verdict {
            Verdict::Pass { summary } => summary,
            Verdict::Breach { detail, .. } => detail,
            Verdict::Inconclusive { why } => why,
        };
        for note in notes {
            if !text.is_empty() {
                text.push_str("; ");
            }
            text.push_str(note);
        }
    }
    verdict
}

fn judge_windows(canary: &GroupWindow, baseline: &GroupWindow, t: &Thresholds) -> Verdict {
    if canary.hosts.is_empty() {
        return Verdict::Inconclusive {
            why: "no canary host to judge".to_owned(),
        };
    }
    let mut checks = vec![
        check_health(canary, baseline, t),
        check_error_rate(canary, baseline, t),
    ];
    checks.extend(check_relative(canary, baseline, t));
    checks.push(check_latency(canary, baseline, t));
    checks.push(check_error_lines(canary, baseline, t));

    let mut within = Vec::new();
    let mut missing = Vec::new();
    for check in checks {
        match check {
            Check::Breach(v) => return v,
            Check::Within(s) => within.push(s),
            Check::NoData(why) => missing.push(why),
            Check::Off => {}
        }
    }
    if !missing.is_empty() {
        return Verdict::Inconclusive {
            why: missing.join("; "),
        };
    }
    if within.is_empty() {
        return Verdict::Inconclusive {
            why: "no check applies: set min_health_pass_rate (with [health]), max_error_rate, max_latency_ms, max_relative or max_error_lines_per_min".to_owned(),
        };
    }
    let hosts = |n: usize| if n == 1 { "host" } else { "hosts" };
    Verdict::Pass {
        summary: format!(
            "{} canary {} against {} baseline {}: {}",
            canary.hosts.len(),
            hosts(canary.hosts.len()),
            baseline.hosts.len(),
            hosts(baseline.hosts.len()),
            within.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(s: &[&str]) -> Result<Vec<CanaryStep>, String> {
        parse_steps(s)
    }

    fn probe(ok: bool, ms: u64) -> Probe {
        Probe {
            healthy: ok,
            latency: ok.then(|| Duration::from_millis(ms)),
            detail: if ok { "HTTP 200" } else { "HTTP 503" }.to_owned(),
        }
    }

    /// A host with `n` probes of `ms` latency, the given request counts and
    /// error lines per minute.
    fn host(name: &str, n: usize, ms: u64, requests: Option<(f64, f64)>, lines: f64) -> HostWindow {
        HostWindow {
            host: name.to_owned(),
            probes: (0..n).map(|_| probe(true, ms)).collect(),
            error_lines_per_min: Some(lines),
            requests: requests.map(|(total, errors)| Requests { total, errors }),
            app_latency_ms: None,
            gaps: Gaps::default(),
            notes: Vec::new(),
        }
    }

    #[test]
    fn the_apps_own_latency_quantile_is_judged_before_probe_latency() {
        let t = Thresholds {
            max_latency_ms: Some(250),
            ..Thresholds::default()
        };
        // Probes answer in 20 ms, but the app says its p99 is 900 ms.
        let mut slow = host("web-1", 30, 20, None, 0.0);
        slow.app_latency_ms = Some(900.0);
        let mut base = baseline();
        for h in &mut base.hosts {
            h.app_latency_ms = Some(120.0);
        }
        let v = analyse(&group(vec![slow]), &base, &t);
        let Verdict::Breach {
            metric,
            value,
            threshold,
            detail,
            ..
        } = &v
        else {
            panic!("{v}");
        };
        assert_eq!(
            (*metric, *value, *threshold),
            (Metric::AppLatency, 900.0, 250.0)
        );
        assert_eq!(detail, "baseline 120 ms");
        assert!(
            v.to_string().contains(
                "latency (metrics.latency) 900 ms is above the threshold 250 ms (max_latency_ms)"
            ),
            "{v}"
        );

        let mut fine = host("web-1", 30, 20, None, 0.0);
        fine.app_latency_ms = Some(200.0);
        assert!(analyse(&group(vec![fine]), &base, &t).is_pass());
    }

    fn group(hosts: Vec<HostWindow>) -> GroupWindow {
        GroupWindow { hosts }
    }

    fn baseline() -> GroupWindow {
        group(vec![
            host("web-2", 30, 20, Some((1000.0, 5.0)), 0.0),
            host("web-3", 30, 22, Some((1000.0, 5.0)), 1.0),
            host("web-4", 30, 21, Some((1000.0, 5.0)), 0.0),
        ])
    }

    fn strict() -> Thresholds {
        Thresholds {
            max_error_rate: Some(0.01),
            max_latency_ms: Some(200),
            max_relative: Some(2.0),
            ..Thresholds::default()
        }
    }

    #[test]
    fn parses_each_kind_of_step() {
        assert_eq!(
            steps(&["1", "pause 60s", "25%", "pause", " 100% "]),
            Ok(vec![
                CanaryStep::Move(HostCount::Count(1)),
                CanaryStep::Pause(PauseKind::Timed(Duration::from_secs(60))),
                CanaryStep::Move(HostCount::Percent(25)),
                CanaryStep::Pause(PauseKind::Operator),
                CanaryStep::Move(HostCount::Percent(100)),
            ])
        );
        assert_eq!(
            steps(&["1", "pause 1h 30m", "100%"]).map(|s| s[1]),
            Ok(CanaryStep::Pause(PauseKind::Timed(Duration::from_secs(
                5400
            ))))
        );
        assert_eq!(steps(&["100%"]).map(|s| s.len()), Ok(1));
    }

    #[test]
    fn steps_print_as_written() {
        let shown: Vec<String> = steps(&["1", "pause 60s", "50%", "pause", "100%"])
            .unwrap()
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(shown, ["1", "pause 1m", "50%", "pause", "100%"]);
    }

    #[test]
    fn bad_steps_say_which_and_why() {
        let err = |s: &[&str]| steps(s).unwrap_err();
        let e = err(&["1", "pause soon", "100%"]);
        assert!(e.starts_with("canary step 2 (\"pause soon\"): "), "{e}");
        assert!(e.contains("not a duration"), "{e}");
        let e = err(&["1", "pause 0s", "100%"]);
        assert!(e.contains("step 2") && e.contains("above zero"), "{e}");
        assert_eq!(
            CanaryStep::parse("Pause 30s"),
            Ok(CanaryStep::Pause(PauseKind::Timed(Duration::from_secs(30))))
        );
        let e = err(&["1", "pause60s", "100%"]);
        assert!(e.contains("step 2") && e.contains("not a pause"), "{e}");
        let e = err(&["1", "paus", "100%"]);
        assert!(e.contains("step 2") && e.contains("not a pause"), "{e}");
        let e = err(&["1", "half", "100%"]);
        assert!(
            e.contains("step 2 (\"half\")") && e.contains("\"pause 60s\""),
            "{e}"
        );
        let e = err(&["0", "100%"]);
        assert!(e.contains("step 1 (\"0\")"), "{e}");
        let e = err(&["1", "150%"]);
        assert!(e.contains("step 2 (\"150%\")"), "{e}");
    }

    #[test]
    fn steps_must_move_first_only_forward_and_end_at_all() {
        let err = |s: &[&str]| steps(s).unwrap_err();
        assert!(err(&[]).contains("empty"));
        let e = err(&["pause 30s", "100%"]);
        assert!(
            e.contains("step 1") && e.contains("before any host has moved"),
            "{e}"
        );
        let e = err(&["pause"]);
        assert!(e.contains("before any host has moved"), "{e}");
        let e = err(&["50%", "pause", "25%", "100%"]);
        assert!(
            e.contains("step 3 (\"25%\") moves fewer hosts than step 1 (\"50%\")"),
            "{e}"
        );
        let e = err(&["3", "pause", "2", "100%"]);
        assert!(
            e.contains("step 3 (\"2\") moves fewer hosts than step 1 (\"3\")"),
            "{e}"
        );
        let e = err(&["1", "pause 60s", "50%"]);
        assert!(e.contains("step 3 (\"50%\"), does not reach 100%"), "{e}");
        let e = err(&["1", "pause", "4"]);
        assert!(e.contains("step 3 (\"4\"), does not reach 100%"), "{e}");
        let e = err(&["1", "100%", "pause 60s"]);
        assert!(
            e.contains("step 3 (\"pause 60s\") comes after step 2"),
            "{e}"
        );
        let e = err(&["1", "100%", "100%"]);
        assert!(e.contains("step 3"), "{e}");
        // A count and a percentage cannot be compared before the host count
        // is known; `moves` keeps such targets from going down.
        assert!(steps(&["3", "pause", "25%", "100%"]).is_ok());
        // Repeating a target is allowed: it is a longer watch, not a step back.
        assert!(steps(&["25%", "pause 1m", "25%", "pause", "100%"]).is_ok());
    }

    #[test]
    fn moves_four_hosts_step_by_step() {
        let s = steps(&["1", "pause 60s", "50%", "pause", "100%"]).unwrap();
        assert_eq!(
            moves(&s, 4),
            vec![
                Stage {
                    switched: 1,
                    hosts: 0..1,
                    pauses: vec![PauseKind::Timed(Duration::from_secs(60))],
                },
                Stage {
                    switched: 2,
                    hosts: 1..2,
                    pauses: vec![PauseKind::Operator],
                },
                Stage {
                    switched: 4,
                    hosts: 2..4,
                    pauses: vec![],
                },
            ]
        );
    }

    #[test]
    fn moves_never_go_down_and_keep_every_pause() {
        let s = steps(&["3", "pause 10s", "25%", "pause", "100%"]).unwrap();
        let m = moves(&s, 4);
        assert_eq!(m.len(), 3);
        assert_eq!((m[0].switched, m[0].hosts.clone()), (3, 0..3));
        // "25%" of 4 is 1: nothing moves, but the operator's pause still holds.
        assert_eq!((m[1].switched, m[1].hosts.clone()), (3, 3..3));
        assert_eq!(m[1].pauses, vec![PauseKind::Operator]);
        assert_eq!((m[2].switched, m[2].hosts.clone()), (4, 3..4));
    }

    #[test]
    fn moves_on_small_and_empty_environments() {
        let s = steps(&["50%", "pause 1m", "pause", "100%"]).unwrap();
        let one = moves(&s, 1);
        // The "100%" stage moves nothing and does not pause: left out.
        assert_eq!(
            one,
            vec![Stage {
                switched: 1,
                hosts: 0..1,
                pauses: vec![
                    PauseKind::Timed(Duration::from_secs(60)),
                    PauseKind::Operator
                ],
            }]
        );
        assert!(moves(&s, 0).is_empty());
        let big = moves(&steps(&["10", "pause", "100%"]).unwrap(), 3);
        assert_eq!(big[0].switched, 3);
        assert_eq!(big.len(), 1);
    }

    #[test]
    fn bad_canary_breaches_naming_metric_value_and_threshold() {
        let canary = group(vec![host("web-1", 30, 25, Some((1000.0, 200.0)), 3.0)]);
        let v = analyse(&canary, &baseline(), &strict());
        let Verdict::Breach {
            metric,
            value,
            threshold,
            host,
            detail,
        } = &v
        else {
            panic!("expected a breach, got {v:?}");
        };
        assert_eq!(*metric, Metric::ErrorRate);
        assert!((value - 0.2).abs() < 1e-9);
        assert_eq!(*threshold, 0.01);
        assert_eq!(host.as_deref(), Some("web-1"));
        assert!(detail.contains("200 errors in 1000 requests"), "{detail}");
        assert!(detail.contains("baseline 0.50%"), "{detail}");
        assert_eq!(
            v.to_string(),
            "canary breach on web-1: error rate 20% is above the threshold 1% (max_error_rate); \
             200 errors in 1000 requests; baseline 0.50%"
        );
    }

    #[test]
    fn good_canary_passes_with_a_summary() {
        let canary = group(vec![host("web-1", 30, 24, Some((1000.0, 6.0)), 0.0)]);
        let v = analyse(&canary, &baseline(), &strict());
        let Verdict::Pass { summary } = &v else {
            panic!("expected a pass, got {v:?}");
        };
        assert!(
            summary.starts_with("1 canary host against 3 baseline hosts: "),
            "{summary}"
        );
        assert!(summary.contains("health 100% (min 100%)"), "{summary}");
        assert!(summary.contains("error rate 0.60% (max 1%)"), "{summary}");
        assert!(
            summary.contains("median latency 24 ms (max 200 ms)"),
            "{summary}"
        );
        assert!(v.is_pass());
    }

    #[test]
    fn unreadable_metrics_lines_are_said_whatever_the_verdict() {
        let note =
            "http://127.0.0.1:9100/metrics of web-1: 2 lines could not be read (line 7: no value)";
        let mut h = host("web-1", 30, 24, Some((1000.0, 6.0)), 0.0);
        h.notes = vec![note.to_owned()];
        let v = analyse(&group(vec![h.clone()]), &baseline(), &strict());
        assert!(v.is_pass(), "{v:?}");
        assert!(v.to_string().ends_with(note), "{v}");
        h.requests = Some(Requests {
            total: 1000.0,
            errors: 500.0,
        });
        let v = analyse(&group(vec![h.clone()]), &baseline(), &strict());
        assert!(matches!(v, Verdict::Breach { .. }), "{v:?}");
        assert!(v.to_string().ends_with(note), "{v}");
        h.requests = None;
        let v = analyse(&group(vec![h]), &baseline(), &strict());
        assert!(matches!(v, Verdict::Inconclusive { .. }), "{v:?}");
        assert!(v.to_string().ends_with(note), "{v}");
    }

    #[test]
    fn no_samples_is_inconclusive_never_a_pass() {
        let empty = group(vec![HostWindow::new("web-1")]);
        for t in [strict(), Thresholds::default()] {
            let v = analyse(&empty, &baseline(), &t);
            let Verdict::Inconclusive { why } = &v else {
                panic!("expected inconclusive, got {v:?}");
            };
            assert!(why.contains("no health probe of web-1"), "{why}");
        }
        let v = analyse(&group(vec![]), &baseline(), &strict());
        assert!(matches!(v, Verdict::Inconclusive { .. }), "{v:?}");
        // With every check off there is nothing to pass on.
        let off = Thresholds {
            min_health_pass_rate: None,
            ..Thresholds::default()
        };
        let canary = group(vec![host("web-1", 30, 20, None, 0.0)]);
        let v = analyse(&canary, &baseline(), &off);
        assert!(
            matches!(&v, Verdict::Inconclusive { why } if why.contains("no check applies")),
            "{v:?}"
        );
    }

    #[test]
    fn missing_metrics_for_a_set_threshold_are_inconclusive() {
        let canary = group(vec![host("web-1", 30, 20, None, 0.0)]);
        let v = analyse(&canary, &baseline(), &strict());
        assert!(
            matches!(&v, Verdict::Inconclusive { why } if why.contains("no request counters from web-1")),
            "{v:?}"
        );
        let quiet = group(vec![host("web-1", 30, 20, Some((4.0, 0.0)), 0.0)]);
        let v = analyse(&quiet, &baseline(), &strict());
        assert!(
            matches!(&v, Verdict::Inconclusive { why } if why.contains("served 4 requests")),
            "{v:?}"
        );
        // One canary host without data is enough to withhold a pass.
        let two = group(vec![
            host("web-1", 30, 20, Some((1000.0, 1.0)), 0.0),
            HostWindow::new("web-2"),
        ]);
        assert!(matches!(
            analyse(&two, &baseline(), &strict()),
            Verdict::Inconclusive { .. }
        ));
    }

    #[test]
    fn a_breach_wins_over_missing_data() {
        let mut sick = host("web-1", 10, 20, None, 0.0);
        sick.probes[9] = probe(false, 0);
        let v = analyse(&group(vec![sick]), &baseline(), &strict());
        let Verdict::Breach {
            metric,
            value,
            threshold,
            detail,
            ..
        } = &v
        else {
            panic!("expected a breach, got {v:?}");
        };
        assert_eq!(*metric, Metric::HealthPassRate);
        assert!((value - 0.9).abs() < 1e-9);
        assert_eq!(*threshold, 1.0);
        assert_eq!(
            detail,
            "1 of 10 probes failed (last: HTTP 503); baseline 100%"
        );
        assert!(
            v.to_string().contains(
                "health pass rate 90% is below the threshold 100% (min_health_pass_rate)"
            )
        );
    }

    #[test]
    fn health_pass_rate_can_be_relaxed() {
        let mut flaky = host("web-1", 10, 20, None, 0.0);
        flaky.probes[0] = probe(false, 0);
        let t = Thresholds {
            min_health_pass_rate: Some(0.9),
            ..Thresholds::default()
        };
        assert!(analyse(&group(vec![flaky.clone()]), &baseline(), &t).is_pass());
        flaky.probes[1] = probe(false, 0);
        assert!(!analyse(&group(vec![flaky]), &baseline(), &t).is_pass());
    }

    #[test]
    fn relative_limit_compares_with_the_baseline() {
        let t = Thresholds {
            max_relative: Some(2.0),
            ..Thresholds::default()
        };
        // Baseline at 2%: 3% is within 2×, 5% is not.
        let base = group(vec![
            host("web-2", 30, 20, Some((1000.0, 20.0)), 0.0),
            host("web-3", 30, 20, Some((1000.0, 20.0)), 0.0),
        ]);
        let ok = group(vec![host("web-1", 30, 20, Some((1000.0, 30.0)), 0.0)]);
        assert!(analyse(&ok, &base, &t).is_pass());
        let bad = group(vec![host("web-1", 30, 20, Some((1000.0, 50.0)), 0.0)]);
        let v = analyse(&bad, &base, &t);
        let Verdict::Breach {
            metric,
            value,
            threshold,
            host,
            detail,
        } = &v
        else {
            panic!("expected a breach, got {v:?}");
        };
        assert_eq!(*metric, Metric::RelativeErrorRate);
        assert!((value - 0.05).abs() < 1e-9);
        assert!((threshold - 0.04).abs() < 1e-9);
        assert_eq!(host.as_deref(), Some("web-1"));
        assert!(
            detail.contains("baseline 2%") && detail.contains("2×"),
            "{detail}"
        );
        assert!(v.to_string().contains("(max_relative)"), "{v}");
    }

    #[test]
    fn relative_limit_has_a_floor() {
        let t = Thresholds {
            max_relative: Some(2.0),
            ..Thresholds::default()
        };
        let clean = group(vec![host("web-2", 30, 20, Some((1000.0, 0.0)), 0.0)]);
        // 0.1% against 0%: below the 1% floor, and 1 error line against none
        // is below its floor too.
        let canary = group(vec![host("web-1", 30, 20, Some((1000.0, 1.0)), 1.0)]);
        assert!(analyse(&canary, &clean, &t).is_pass());
        // Above the floor, 0% baseline or not, it breaches.
        let canary = group(vec![host("web-1", 30, 20, Some((1000.0, 30.0)), 0.0)]);
        let v = analyse(&canary, &clean, &t);
        assert!(
            matches!(v, Verdict::Breach { metric: Metric::RelativeErrorRate, threshold, .. } if threshold == 0.01),
            "{v:?}"
        );
    }

    #[test]
    fn relative_limit_on_error_lines_without_metrics() {
        let t = Thresholds {
            max_relative: Some(3.0),
            ..Thresholds::default()
        };
        let base = group(vec![
            host("web-2", 30, 20, None, 2.0),
            host("web-3", 30, 20, None, 4.0),
        ]);
        let ok = group(vec![host("web-1", 30, 20, None, 8.0)]);
        assert!(
            analyse(&ok, &base, &t).is_pass(),
            "{:?}",
            analyse(&ok, &base, &t)
        );
        let bad = group(vec![host("web-1", 30, 20, None, 40.0)]);
        let v = analyse(&bad, &base, &t);
        assert!(
            matches!(v, Verdict::Breach { metric: Metric::RelativeErrorLines, value, threshold, .. }
                if value == 40.0 && threshold == 9.0),
            "{v:?}"
        );
        // With no baseline to compare with, the relative limit cannot pass.
        let v = analyse(&ok, &group(vec![]), &t);
        assert!(
            matches!(&v, Verdict::Inconclusive { why } if why.contains("baseline")),
            "{v:?}"
        );
    }

    #[test]
    fn latency_limit_uses_the_median() {
        let t = Thresholds {
            max_latency_ms: Some(100),
            ..Thresholds::default()
        };
        // One slow probe in five does not move the median.
        let mut spiky = host("web-1", 5, 40, None, 0.0);
        spiky.probes[2] = probe(true, 900);
        assert!(analyse(&group(vec![spiky]), &baseline(), &t).is_pass());
        let slow = group(vec![
            host("web-1", 4, 80, None, 0.0),
            host("web-5", 4, 300, None, 0.0),
        ]);
        let v = analyse(&slow, &baseline(), &t);
        let Verdict::Breach {
            metric,
            value,
            threshold,
            host,
            detail,
        } = &v
        else {
            panic!("expected a breach, got {v:?}");
        };
        assert_eq!(*metric, Metric::Latency);
        assert_eq!((*value, *threshold), (300.0, 100.0));
        assert_eq!(host.as_deref(), Some("web-5"));
        assert_eq!(detail, "baseline 21 ms");
        assert!(v.to_string().contains(
            "median probe latency 300 ms is above the threshold 100 ms (max_latency_ms)"
        ));
    }

    #[test]
    fn median_of_even_and_unanswered_probes() {
        let p = [
            probe(true, 10),
            probe(true, 30),
            probe(false, 0),
            probe(true, 20),
            probe(true, 40),
        ];
        assert_eq!(median_ms(&p), Some(25.0));
        assert_eq!(median_ms(&[probe(false, 0)]), None);
    }

    #[test]
    fn error_lines_limit() {
        let t = Thresholds {
            max_error_lines_per_min: Some(5.0),
            ..Thresholds::default()
        };
        let v = analyse(
            &group(vec![host("web-1", 3, 20, None, 12.0)]),
            &baseline(),
            &t,
        );
        assert!(
            matches!(v, Verdict::Breach { metric: Metric::ErrorLines, value, threshold, .. }
                if value == 12.0 && threshold == 5.0),
            "{v:?}"
        );
        let mut unfollowed = host("web-1", 3, 20, None, 0.0);
        unfollowed.error_lines_per_min = None;
        let v = analyse(&group(vec![unfollowed]), &baseline(), &t);
        assert!(
            matches!(&v, Verdict::Inconclusive { why } if why.contains("logs of web-1")),
            "{v:?}"
        );
    }

    #[test]
    fn builds_from_monitor_samples() {
        use std::time::SystemTime;
        let at = SystemTime::UNIX_EPOCH;
        let app = |requests_total, errors_total| AppSample {
            at,
            requests_total,
            errors_total,
        };
        assert_eq!(
            Requests::step(&app(100.0, 1.0), &app(300.0, 5.0)),
            Requests {
                total: 200.0,
                errors: 4.0
            }
        );
        // Restarted in between: what it counted since is all new.
        assert_eq!(
            Requests::step(&app(300.0, 5.0), &app(10.0, 3.0)),
            Requests {
                total: 10.0,
                errors: 3.0
            }
        );
        let sample = |status| HealthSample {
            at,
            status,
            latency: None,
            detail: "timed out".into(),
        };
        assert!(Probe::from(&sample(HealthStatus::Healthy)).healthy);
        assert!(!Probe::from(&sample(HealthStatus::Unknown)).healthy);
        assert!(!Probe::from(&sample(HealthStatus::Unhealthy)).healthy);
    }

    #[test]
    fn thresholds_are_validated() {
        assert!(Thresholds::default().validate().is_ok());
        assert!(strict().validate().is_ok());
        let bad = |t: Thresholds| t.validate().unwrap_err();
        assert!(
            bad(Thresholds {
                max_error_rate: Some(1.5),
                ..strict()
            })
            .contains("max_error_rate")
        );
        assert!(
            bad(Thresholds {
                min_health_pass_rate: Some(-0.1),
                ..strict()
            })
            .contains("min_health_pass_rate")
        );
        assert!(
            bad(Thresholds {
                max_relative: Some(0.5),
                ..strict()
            })
            .contains("max_relative")
        );
        assert!(
            bad(Thresholds {
                max_latency_ms: Some(0),
                ..strict()
            })
            .contains("max_latency_ms")
        );
        assert!(
            bad(Thresholds {
                relative_floor_lines_per_min: f64::NAN,
                ..strict()
            })
            .contains("floor")
        );
    }

    fn breach_of(v: &Verdict) -> (Metric, f64, f64, &str, &str) {
        let Verdict::Breach {
            metric,
            value,
            threshold,
            host,
            detail,
        } = v
        else {
            panic!("expected a breach, got {v:?}");
        };
        (
            *metric,
            *value,
            *threshold,
            host.as_deref().unwrap_or(""),
            detail.as_str(),
        )
    }

    fn no_counters(name: &str) -> HostWindow {
        let mut h = host(name, 30, 20, None, 0.0);
        h.gaps.requests = Some(format!(
            "the metrics page of {name} could not be read: connection refused"
        ));
        h
    }

    #[test]
    fn a_breach_on_one_host_wins_over_missing_data_on_another() {
        let t = Thresholds {
            max_error_rate: Some(0.05),
            ..Thresholds::default()
        };
        let clean = group(vec![host("web-3", 30, 20, Some((2000.0, 0.0)), 0.0)]);
        // web-1 fails a third of its requests; web-2's scrape failed. Either order.
        for hosts in [
            vec![
                host("web-1", 30, 20, Some((213.0, 73.0)), 0.0),
                no_counters("web-2"),
            ],
            vec![
                no_counters("web-2"),
                host("web-1", 30, 20, Some((213.0, 73.0)), 0.0),
            ],
        ] {
            let v = analyse(&group(hosts), &clean, &t);
            let (metric, _, threshold, host, _) = breach_of(&v);
            assert_eq!(
                (metric, threshold, host),
                (Metric::ErrorRate, 0.05, "web-1")
            );
            assert_eq!(
                v.to_string(),
                "canary breach on web-1: error rate 34.3% is above the threshold 5% (max_error_rate); \
                 73 errors in 213 requests; baseline 0%"
            );
        }
        // The same for every per-host check: health, latency, error lines.
        let mut sick = host("web-1", 10, 20, None, 0.0);
        sick.probes[0] = probe(false, 0);
        let v = analyse(
            &group(vec![HostWindow::new("web-2"), sick]),
            &clean,
            &Thresholds::default(),
        );
        assert_eq!(breach_of(&v).0, Metric::HealthPassRate, "{v}");
        let t = Thresholds {
            max_latency_ms: Some(100),
            max_error_lines_per_min: Some(5.0),
            min_health_pass_rate: None,
            ..Thresholds::default()
        };
        let mut quiet = HostWindow::new("web-2");
        quiet.error_lines_per_min = Some(0.0);
        let slow = host("web-1", 5, 400, None, 0.0);
        let v = analyse(&group(vec![quiet, slow]), &clean, &t);
        assert_eq!(breach_of(&v).0, Metric::Latency, "{v}");
        let noisy = host("web-1", 5, 20, None, 60.0);
        let v = analyse(&group(vec![HostWindow::new("web-2"), noisy]), &clean, &t);
        assert_eq!(breach_of(&v).0, Metric::ErrorLines, "{v}");
        // Without a breach, the host without data still withholds a pass, and
        // says why in the gatherer's words.
        let fine = host("web-1", 30, 20, Some((213.0, 1.0)), 0.0);
        let v = analyse(
            &group(vec![fine, no_counters("web-2")]),
            &clean,
            &Thresholds {
                max_error_rate: Some(0.05),
                ..Thresholds::default()
            },
        );
        assert!(
            matches!(&v, Verdict::Inconclusive { why } if why.contains("metrics page of web-2 could not be read")),
            "{v:?}"
        );
    }

    #[test]
    fn a_configured_app_latency_never_falls_back_to_probe_latency() {
        let t = Thresholds {
            max_latency_ms: Some(250),
            min_health_pass_rate: None,
            expects: Expects {
                app_latency: true,
                ..Expects::default()
            },
            ..Thresholds::default()
        };
        // Probes answer in 20 ms, but the app's quantile never came in.
        let mut canary = host("web-1", 30, 20, None, 0.0);
        canary.gaps.app_latency = Some(
            "web-1: http_request_duration_seconds is a histogram, and shipdeck does not derive quantiles from histogram buckets".into(),
        );
        let v = analyse(&group(vec![canary.clone()]), &baseline(), &t);
        assert!(
            matches!(&v, Verdict::Inconclusive { why } if why.contains("is a histogram")),
            "{v:?}"
        );
        // Before, the probes' 20 ms passed it. Data-driven (nothing expected), they still do.
        let data_driven = Thresholds {
            expects: Expects::default(),
            ..t.clone()
        };
        assert!(analyse(&group(vec![canary.clone()]), &baseline(), &data_driven).is_pass());
        // One canary host with the app's latency and one without: no pass.
        let mut other = host("web-5", 30, 20, None, 0.0);
        other.app_latency_ms = Some(100.0);
        let v = analyse(
            &group(vec![other, HostWindow::new("web-1")]),
            &baseline(),
            &data_driven,
        );
        assert!(
            matches!(&v, Verdict::Inconclusive { why } if why.contains("no latency reading (metrics.latency) from web-1")),
            "{v:?}"
        );
    }

    #[test]
    fn configured_metrics_and_logs_keep_their_relative_checks_when_silent() {
        let expects = Expects {
            requests: true,
            error_lines: true,
            app_latency: false,
        };
        let t = Thresholds {
            max_relative: Some(2.0),
            expects,
            ..Thresholds::default()
        };
        // Nobody reported counters: the error-rate comparison stays on.
        let canary = group(vec![host("web-1", 30, 20, None, 0.0)]);
        let base = group(vec![host("web-2", 30, 20, None, 0.0)]);
        let v = analyse(&canary, &base, &t);
        assert!(
            matches!(&v, Verdict::Inconclusive { why } if why.contains("no request counters from web-1")
                || why.contains("the baseline has no error rate")),
            "{v:?}"
        );
        let data_driven = Thresholds {
            expects: Expects::default(),
            ..t.clone()
        };
        assert!(analyse(&canary, &base, &data_driven).is_pass());
        // Nobody's logs were followed: the error-lines comparison stays on.
        let mut canary = group(vec![host("web-1", 30, 20, Some((1000.0, 0.0)), 0.0)]);
        let mut base = group(vec![host("web-2", 30, 20, Some((1000.0, 0.0)), 0.0)]);
        canary.hosts[0].error_lines_per_min = None;
        base.hosts[0].error_lines_per_min = None;
        base.hosts[0].gaps.logs =
            Some("log file /srv/a/log/app.log does not exist on web-2".into());
        let v = analyse(&canary, &base, &t);
        assert!(
            matches!(&v, Verdict::Inconclusive { why } if why.contains("error log lines")
                && why.contains("/srv/a/log/app.log does not exist on web-2")),
            "{v:?}"
        );
        assert!(analyse(&canary, &base, &data_driven).is_pass());
        // An empty baseline is named as such.
        let v = analyse(&canary, &group(vec![]), &t);
        assert!(
            matches!(&v, Verdict::Inconclusive { why } if why.contains("no host is left on the old release")),
            "{v:?}"
        );
    }

    #[test]
    fn relative_latency_compares_with_the_baseline_above_a_margin() {
        let t = Thresholds {
            max_relative: Some(2.0),
            ..Thresholds::default()
        };
        let base = group(vec![
            host("web-2", 30, 40, None, 0.0),
            host("web-3", 30, 40, None, 0.0),
        ]);
        // 2× of 40 ms is 80, but never below 40 + 50: 85 ms passes, 120 does not.
        let ok = group(vec![host("web-1", 30, 85, None, 0.0)]);
        assert!(
            analyse(&ok, &base, &t).is_pass(),
            "{}",
            analyse(&ok, &base, &t)
        );
        let slow = group(vec![host("web-1", 30, 120, None, 0.0)]);
        let v = analyse(&slow, &base, &t);
        let (metric, value, threshold, host_name, _) = breach_of(&v);
        assert_eq!(
            (metric, value, threshold, host_name),
            (Metric::RelativeLatency, 120.0, 90.0, "web-1")
        );
        assert_eq!(
            v.to_string(),
            "canary breach on web-1: median probe latency against the baseline 120 ms is above the threshold 90 ms (max_relative); \
             baseline 40 ms; the limit is 2× the baseline, and never below the baseline + 50 ms"
        );
        // A 2 ms baseline does not fail a 5 ms canary.
        let fast = group(vec![host("web-2", 30, 2, None, 0.0)]);
        assert!(analyse(&group(vec![host("web-1", 30, 5, None, 0.0)]), &fast, &t).is_pass());
        // Far above the factor, it breaches.
        let v = analyse(&group(vec![host("web-1", 30, 300, None, 0.0)]), &fast, &t);
        assert_eq!(breach_of(&v).2, 52.0);

        // The app's own quantile, when it has one, on both sides.
        let app = |name: &str, ms: f64| {
            let mut h = host(name, 30, 20, None, 0.0);
            h.app_latency_ms = Some(ms);
            h
        };
        let base = group(vec![app("web-2", 100.0), app("web-3", 140.0)]);
        assert!(analyse(&group(vec![app("web-1", 230.0)]), &base, &t).is_pass());
        let v = analyse(&group(vec![app("web-1", 300.0)]), &base, &t);
        let (metric, value, threshold, _, detail) = breach_of(&v);
        assert_eq!(
            (metric, value, threshold),
            (Metric::RelativeAppLatency, 300.0, 240.0)
        );
        assert!(detail.contains("baseline 120 ms"), "{detail}");
        assert!(
            v.to_string()
                .contains("latency (metrics.latency) against the baseline 300 ms is above the threshold 240 ms (max_relative)"),
            "{v}"
        );
        // A baseline without the app's latency cannot be compared with.
        let v = analyse(
            &group(vec![app("web-1", 230.0)]),
            &group(vec![host("web-2", 30, 20, None, 0.0)]),
            &t,
        );
        assert!(
            matches!(&v, Verdict::Inconclusive { why } if why.contains("the baseline has no latency (metrics.latency)")),
            "{v:?}"
        );
    }

    #[test]
    fn relative_error_rate_names_the_requests_and_the_rule() {
        let t = Thresholds {
            max_relative: Some(2.0),
            ..Thresholds::default()
        };
        let base = group(vec![host("web-2", 30, 20, Some((1000.0, 20.0)), 0.0)]);
        let v = analyse(
            &group(vec![host("web-1", 30, 20, Some((1000.0, 50.0)), 0.0)]),
            &base,
            &t,
        );
        assert_eq!(
            v.to_string(),
            "canary breach on web-1: error rate against the baseline 5% is above the threshold 4% (max_relative); \
             50 errors in 1000 requests; baseline 2%; the limit is 2× the baseline, and never below 1%"
        );
        // A baseline too quiet for an error rate says so.
        let quiet = group(vec![host("web-2", 30, 20, Some((3.0, 0.0)), 0.0)]);
        let v = analyse(
            &group(vec![host("web-1", 30, 20, Some((1000.0, 5.0)), 0.0)]),
            &quiet,
            &t,
        );
        assert!(
            matches!(&v, Verdict::Inconclusive { why } if why.contains("the baseline served 3 requests")),
            "{v:?}"
        );
    }
}
