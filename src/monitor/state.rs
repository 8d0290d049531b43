//! The bounded picture of every host a console draws from: a pure reducer
//! over [`MonitorEvent`]s. Log lines live in a ring per host; samples in a
//! window pruned by time (and by count, whatever the intervals).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use regex::{Regex, RegexBuilder};

use super::prom::{self, Rates};
use super::{
    AppSample, HealthSample, HealthStatus, HostKey, HostView, LogLine, MonitorEvent, SystemSample,
};
use crate::config::Config;

/// How far back sample windows reach.
pub const SAMPLE_WINDOW: Duration = Duration::from_secs(10 * 60);
/// A window never holds more samples than this, however short an interval.
pub const MAX_WINDOW_SAMPLES: usize = 3_600;
/// App rates are taken over this much of the newest samples.
pub const RATE_SPAN: Duration = Duration::from_secs(60);
/// Error lines per minute count this far back.
const ERROR_SPAN_SECS: u64 = 60;

/// The most log lines a console holds, all hosts together (about 50 MiB):
/// a fleet of 1,000 hosts must not hold `buffer_lines` of each.
pub const MAX_HELD_LINES: usize = 250_000;
/// However many hosts share [`MAX_HELD_LINES`], each keeps at least this many.
const MIN_LINES_PER_HOST: usize = 100;

/// Lines kept of each host: `logs.buffer_lines`, unless the fleet is so
/// large that they would add up to more than [`MAX_HELD_LINES`].
pub fn log_lines_per_host(config: &Config) -> usize {
    let hosts: usize = config.environments.iter().map(|e| e.hosts.len()).sum();
    let share = (MAX_HELD_LINES / hosts.max(1)).max(MIN_LINES_PER_HOST);
    config.logs.buffer_lines.min(share).max(1)
}

/// One stored log line, with its place in the arrival order of all hosts.
#[derive(Debug, Clone, Copy)]
pub struct LogEntry<'a> {
    pub key: HostKey,
    /// Arrival number across all hosts, from 1; larger is newer.
    pub seq: u64,
    pub line: &'a LogLine,
}

/// Everything known about one host. The console only reads it.
#[derive(Debug, Clone, Default)]
pub struct HostMonitor {
    /// `None` until the monitor first tried to connect.
    pub connected: Option<bool>,
    /// Why the last connection attempt failed, while disconnected.
    pub disconnect_reason: Option<String>,
    /// When the monitor tries again, as it said at the last failure.
    pub retry_in: Option<Duration>,
    /// Why the log follow stopped, until a line comes again.
    pub logs_down: Option<String>,
    /// Lines that came faster than the console took them and were never
    /// shown, since the console opened.
    pub logs_dropped: u64,
    /// What the host runs, as last read.
    pub view: Option<HostView>,
    /// The newest health probe.
    pub health: Option<HealthSample>,
    /// Probes in a row that were not healthy (unhealthy or unknown).
    pub consecutive_failures: u32,
    /// The newest `/proc` sample.
    pub system: Option<SystemSample>,
    /// The newest app metrics sample.
    pub app: Option<AppSample>,
    /// Derived from the app samples of the last [`RATE_SPAN`].
    pub rates: Option<Rates>,
    log: VecDeque<(u64, LogLine)>,
    health_window: VecDeque<HealthSample>,
    system_window: VecDeque<SystemSample>,
    app_window: VecDeque<AppSample>,
    errors: ErrorCounter,
}

impl HostMonitor {
    /// The health to show: `None` before any probe (or with no `[health]`),
    /// `Unknown` while disconnected whatever the last probe said.
    pub fn health_status(&self) -> Option<HealthStatus> {
        let latest = self.health.as_ref()?.status;
        Some(if self.connected == Some(false) {
            HealthStatus::Unknown
        } else {
            latest
        })
    }

    /// Probe latencies in ms, oldest first, for a sparkline; a probe that got
    /// no answer shows as 0 (see [`Self::latency_ms_or_absent`]).
    pub fn latency_ms(&self) -> Vec<u64> {
        self.health_window
            .iter()
            .map(|s| s.latency.map_or(0, |l| l.as_millis() as u64))
            .collect()
    }

    /// Like [`Self::latency_ms`], with `None` for unanswered probes (ratatui's
    /// `Sparkline::data` draws those as absent bars).
    pub fn latency_ms_or_absent(&self) -> Vec<Option<u64>> {
        self.health_window
            .iter()
            .map(|s| s.latency.map(|l| l.as_millis() as u64))
            .collect()
    }

    /// Error log lines received in the minute before `now`.
    pub fn error_lines_per_min(&self, now: SystemTime) -> f64 {
        self.errors.last_minute(now) as f64
    }

    pub fn request_rate(&self) -> Option<f64> {
        self.rates.map(|r| r.requests_per_sec)
    }

    /// Errors over requests, from the app's counters; `None` without
    /// `[metrics]`, before two samples, or while no request came in.
    pub fn error_ratio(&self) -> Option<f64> {
        self.rates.and_then(|r| r.error_ratio)
    }

    pub fn cpu_pct(&self) -> Option<f64> {
        self.system.as_ref().and_then(|s| s.cpu_pct)
    }

    /// `(used, total)` bytes.
    pub fn memory(&self) -> Option<(u64, u64)> {
        self.system.as_ref().map(|s| (s.mem_used, s.mem_total))
    }

    pub fn load1(&self) -> Option<f64> {
        self.system.as_ref().map(|s| s.load1)
    }

    /// CPU % over the window, oldest first, rounded, for a sparkline (a
    /// sample without a share shows as 0).
    pub fn cpu_history(&self) -> Vec<u64> {
        self.system_window
            .iter()
            .map(|s| s.cpu_pct.map_or(0, |c| c.round() as u64))
            .collect()
    }

    /// Health samples of the window, oldest first.
    pub fn health_samples(&self) -> impl DoubleEndedIterator<Item = &HealthSample> + '_ {
        self.health_window.iter()
    }

    pub fn system_samples(&self) -> impl DoubleEndedIterator<Item = &SystemSample> + '_ {
        self.system_window.iter()
    }

    pub fn app_samples(&self) -> impl DoubleEndedIterator<Item = &AppSample> + '_ {
        self.app_window.iter()
    }

    /// This host's stored log lines, oldest first.
    pub fn log_lines(&self) -> impl DoubleEndedIterator<Item = &LogLine> + '_ {
        self.log.iter().map(|(_, l)| l)
    }

    pub fn log_len(&self) -> usize {
        self.log.len()
    }
}

/// Error lines per second over the last minute, in a fixed ring of seconds:
/// bounded however many lines flood in.
#[derive(Debug, Clone, Default)]
struct ErrorCounter {
    /// `(unix second, count)`, slot `second % len`.
    slots: Vec<(u64, u32)>,
}

impl ErrorCounter {
    const SLOTS: usize = ERROR_SPAN_SECS as usize + 1;

    fn add(&mut self, at: SystemTime) {
        if self.slots.is_empty() {
            self.slots = vec![(u64::MAX, 0); Self::SLOTS];
        }
        let sec = unix_secs(at);
        let slot = &mut self.slots[(sec % Self::SLOTS as u64) as usize];
        if slot.0 == sec {
            slot.1 = slot.1.saturating_add(1);
        } else {
            *slot = (sec, 1);
        }
    }

    fn last_minute(&self, now: SystemTime) -> u64 {
        let now = unix_secs(now);
        self.slots
            .iter()
            .filter(|(sec, _)| *sec <= now && now - *sec < ERROR_SPAN_SECS)
            .map(|(_, n)| u64::from(*n))
            .sum()
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Every host's [`HostMonitor`], in config order.
#[derive(Debug, Clone)]
pub struct MonitorState {
    hosts: Vec<Vec<HostMonitor>>,
    buffer_lines: usize,
    window: Duration,
    last_seq: u64,
}

impl MonitorState {
    /// Log rings of [`log_lines_per_host`], sample windows of [`SAMPLE_WINDOW`].
    pub fn new(config: &Config) -> Self {
        let shape: Vec<usize> = config.environments.iter().map(|e| e.hosts.len()).collect();
        Self::with_shape(&shape, log_lines_per_host(config), SAMPLE_WINDOW)
    }

    /// `hosts_per_env[e]` hosts in environment `e` (for tests and fixtures).
    pub fn with_shape(hosts_per_env: &[usize], buffer_lines: usize, window: Duration) -> Self {
        MonitorState {
            hosts: hosts_per_env
                .iter()
                .map(|n| vec![HostMonitor::default(); *n])
                .collect(),
            buffer_lines: buffer_lines.max(1),
            window,
            last_seq: 0,
        }
    }

    pub fn host(&self, key: HostKey) -> Option<&HostMonitor> {
        self.hosts.get(key.env)?.get(key.host)
    }

    /// Every host in config order.
    pub fn hosts(&self) -> impl Iterator<Item = (HostKey, &HostMonitor)> + '_ {
        self.hosts.iter().enumerate().flat_map(|(e, hs)| {
            hs.iter()
                .enumerate()
                .map(move |(h, m)| (HostKey { env: e, host: h }, m))
        })
    }

    /// The arrival number of the newest log line stored (0: none yet). Keep it
    /// to pause a log view: [`Self::logs_before`] with `before = seq + 1`
    /// shows the same lines however many arrive later.
    pub fn last_log_seq(&self) -> u64 {
        self.last_seq
    }

    /// The only way the state changes. Events for hosts not in the config
    /// are ignored.
    pub fn apply(&mut self, ev: MonitorEvent) {
        let key = ev.key();
        let (buffer_lines, window) = (self.buffer_lines, self.window);
        let next_seq = self.last_seq + 1;
        let Some(h) = self
            .hosts
            .get_mut(key.env)
            .and_then(|hs| hs.get_mut(key.host))
        else {
            return;
        };
        match ev {
            MonitorEvent::Log { line, .. } => {
                if line.error {
                    h.errors.add(line.received);
                }
                if h.log.len() >= buffer_lines {
                    h.log.pop_front();
                }
                h.log.push_back((next_seq, line));
                h.logs_down = None;
                self.last_seq = next_seq;
            }
            MonitorEvent::LogsDown { reason, .. } => h.logs_down = Some(reason),
            MonitorEvent::LogsDropped { count, .. } => {
                h.logs_dropped = h.logs_dropped.saturating_add(count);
            }
            MonitorEvent::LogsWaiting { .. } => {}
            MonitorEvent::Health { sample, .. } => {
                if sample.status == HealthStatus::Healthy {
                    h.consecutive_failures = 0;
                } else {
                    h.consecutive_failures = h.consecutive_failures.saturating_add(1);
                }
                push_window(&mut h.health_window, sample.clone(), window, |s| s.at);
                h.health = Some(sample);
            }
            MonitorEvent::System { sample, .. } => {
                push_window(&mut h.system_window, sample.clone(), window, |s| s.at);
                h.system = Some(sample);
            }
            MonitorEvent::App { sample, .. } => {
                push_window(&mut h.app_window, sample.clone(), window, |s| s.at);
                h.app = Some(sample);
                let samples: &[AppSample] = h.app_window.make_contiguous();
                h.rates = prom::rates(samples, RATE_SPAN);
            }
            MonitorEvent::State { state, .. } => h.view = Some(state),
            MonitorEvent::Disconnected {
                reason, retry_in, ..
            } => {
                h.connected = Some(false);
                h.disconnect_reason = Some(reason);
                h.retry_in = Some(retry_in);
            }
            MonitorEvent::Connected { .. } => {
                h.connected = Some(true);
                h.disconnect_reason = None;
                h.retry_in = None;
            }
        }
    }

    /// All hosts' log lines merged in arrival order (newest last), or one
    /// host's, optionally only those containing `filter` (case-insensitive
    /// when `filter` is all lower case, as in ripgrep's smart case): the
    /// newest `limit` of them.
    pub fn logs(
        &self,
        only: Option<HostKey>,
        filter: Option<&str>,
        limit: usize,
    ) -> Vec<(HostKey, &LogLine)> {
        self.logs_before(only, filter, limit, None)
            .into_iter()
            .map(|e| (e.key, e.line))
            .collect()
    }

    /// Like [`Self::logs`], with each line's arrival number, and only lines
    /// that arrived before `before` (to page back, or to hold a paused view).
    pub fn logs_before(
        &self,
        only: Option<HostKey>,
        filter: Option<&str>,
        limit: usize,
        before: Option<u64>,
    ) -> Vec<LogEntry<'_>> {
        if limit == 0 {
            return Vec::new();
        }
        let matcher = filter.filter(|f| !f.is_empty()).map(smart_case);
        let mut cursors: Vec<Cursor<'_>> = self
            .hosts()
            .filter(|(key, _)| only.is_none_or(|o| o == *key))
            .map(|(key, h)| Cursor {
                key,
                ring: &h.log,
                end: before.map_or(h.log.len(), |b| h.log.partition_point(|(s, _)| *s < b)),
            })
            .collect();
        // Newest first across hosts: each host's ring is in arrival order,
        // so a heap of each host's newest unread match merges them.
        let mut heap = BinaryHeap::with_capacity(cursors.len());
        for (i, c) in cursors.iter_mut().enumerate() {
            if let Some(seq) = c.next_match(matcher.as_ref()) {
                heap.push((seq, Reverse(i)));
            }
        }
        let mut out = Vec::with_capacity(limit.min(4_096));
        while out.len() < limit {
            let Some((_, Reverse(i))) = heap.pop() else {
                break;
            };
            let c = &mut cursors[i];
            let (seq, line) = &c.ring[c.end];
            out.push(LogEntry {
                key: c.key,
                seq: *seq,
                line,
            });
            if let Some(seq) = c.next_match(matcher.as_ref()) {
                heap.push((seq, Reverse(i)));
            }
        }
        out.reverse();
        out
    }
}

impl MonitorState {
    /// How many lines (of `only`, matching `filter` as [`Self::logs`] does)
    /// arrived at or after arrival number `from`: what a paused view has not
    /// shown yet. Reads only those lines.
    pub fn count_logs_since(
        &self,
        only: Option<HostKey>,
        filter: Option<&str>,
        from: u64,
    ) -> usize {
        let matcher = filter.filter(|f| !f.is_empty()).map(smart_case);
        self.hosts()
            .filter(|(key, _)| only.is_none_or(|o| o == *key))
            .map(|(_, h)| {
                h.log
                    .iter()
                    .rev()
                    .take_while(|(seq, _)| *seq >= from)
                    .filter(|(_, l)| matcher.as_ref().is_none_or(|m| m.matches(&l.text)))
                    .count()
            })
            .sum()
    }
}

/// Reads one host's ring backwards; `end` is the match last found (or one
/// past the last line to read).
struct Cursor<'a> {
    key: HostKey,
    ring: &'a VecDeque<(u64, LogLine)>,
    end: usize,
}

impl Cursor<'_> {
    /// Move to the next older matching line; its arrival number.
    fn next_match(&mut self, matcher: Option<&Matcher>) -> Option<u64> {
        while self.end > 0 {
            self.end -= 1;
            let (seq, line) = &self.ring[self.end];
            if matcher.is_none_or(|m| m.matches(&line.text)) {
                return Some(*seq);
            }
        }
        None
    }
}

/// A literal search, through `regex` for its fast substring search.
enum Matcher {
    Regex(Regex),
    /// A filter too long for a regex: plain, case-sensitive.
    Plain(String),
}

impl Matcher {
    fn matches(&self, text: &str) -> bool {
        match self {
            Matcher::Regex(re) => re.is_match(text),
            Matcher::Plain(s) => text.contains(s.as_str()),
        }
    }
}

/// Ignores case unless the filter has an upper-case letter.
fn smart_case(filter: &str) -> Matcher {
    RegexBuilder::new(&regex::escape(filter))
        .case_insensitive(!filter.chars().any(char::is_uppercase))
        .build()
        .map_or_else(|_| Matcher::Plain(filter.to_owned()), Matcher::Regex)
}

/// Append, then drop what is older than `window` before the newest sample,
/// and whatever exceeds [`MAX_WINDOW_SAMPLES`].
fn push_window<T>(
    window: &mut VecDeque<T>,
    sample: T,
    span: Duration,
    at: impl Fn(&T) -> SystemTime,
) {
    let newest = at(&sample);
    window.push_back(sample);
    while let Some(front) = window.front() {
        let too_old = newest.duration_since(at(front)).is_ok_and(|age| age > span);
        if too_old || window.len() > MAX_WINDOW_SAMPLES {
            window.pop_front();
        } else {
            break;
        }
    }
}

#[cfg(test)]
mod tests;
