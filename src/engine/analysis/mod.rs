//! Gathering what the canary analysis judges: during a pause, every tick
//! probes each host's health, reads its app counters and latency, and reads
//! the log lines appended to each `logs.files` file since the last tick
//! (counting those that match `error_pattern`). The same round trip picks up
//! a word left on the host by `shipdeck continue`/`abort`. With `logs.command`
//! instead of files, each watched host runs that command for as long as the
//! pause lasts, on a connection of its own (a follow blocks its session).
//! The judging itself is pure, in `canary::analyse`; what this side adds is
//! why a figure is missing, so that missing data is never a pass in disguise.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use regex::Regex;

use super::CancelToken;
use super::canary::{Gaps, GroupWindow, HostWindow, Probe, Requests};
use super::health::probe_once;
use crate::config::Config;
use crate::host::readings::{END_MARK, FILE_MARK, MISSING_MARK, SIGNAL_MARK, canary_read_script};
use crate::host::{HookEnv, Layout, QUICK, StepError};
use crate::model::prometheus::{self, Absent, Buckets, Growth, LatencyQuery, LatencyRead};
use crate::monitor::AppSample;
use crate::monitor::logs::{resolved_files, tail_script};
use crate::transport::{Fleet, HostHandle};

/// Lines of each host kept to show when it breaches.
const KEEP_LINES: usize = 12;
const METRICS_TIMEOUT: Duration = Duration::from_secs(2);
/// Reads in a row that may fail before a figure counts as missing. Counters
/// and log offsets are cumulative, so the read after one lost scrape or log
/// read catches up on it; a second miss in a row means what the analysis has
/// is stale, and stale data must not pass a canary whose app just died.
const MISSES_TOLERATED: u32 = 1;
/// A `logs.command` follow that stopped is started again after this.
const COMMAND_RETRY: Duration = Duration::from_secs(2);
/// Lines a `logs.command` prints this soon after it (re)starts are its
/// backlog (`journalctl -f` and `tail -f` begin with the last ten lines),
/// written before the pause: shown with a breach, never counted.
const COMMAND_BACKLOG: Duration = Duration::from_secs(1);

/// Misses in a row of one kind of reading, and why the newest one missed.
#[derive(Debug, Default)]
struct Misses {
    count: u32,
    why: Option<String>,
}

impl Misses {
    fn ok(&mut self) {
        *self = Misses::default();
    }

    fn missed(&mut self, why: String) {
        self.count += 1;
        self.why = Some(why);
    }

    /// Why the figure must not be judged now, if it must not.
    fn stale(&self) -> Option<String> {
        self.why.clone().filter(|_| self.count > MISSES_TOLERATED)
    }
}

/// One `logs.files` file on one host.
#[derive(Debug, Clone, Default)]
struct LogFile {
    /// As given to the shell (quoted), which is how the operator sees it too.
    path: String,
    /// Bytes read so far; `None` until the first tick sets the starting point
    /// (what was there before the pause is not judged).
    offset: Option<u64>,
    /// Absent or unreadable at the newest read.
    missing: bool,
}

/// One host's readings over the current pause.
pub struct HostReadings {
    pub index: usize,
    pub name: String,
    probes: Vec<Probe>,
    /// The newest counter reading, and the growth since the first one.
    last_app: Option<AppSample>,
    grown: Option<Requests>,
    metrics: Misses,
    /// Readings of `metrics.latency` from a gauge or a summary, in seconds.
    latencies: Vec<f64>,
    /// From a histogram: its newest buckets, and their growth since the
    /// first reading of the pause.
    buckets: Option<Buckets>,
    growth: Option<Growth>,
    latency: Misses,
    /// Lines of the newest metrics page that could not be read.
    page_note: Option<String>,
    files: Vec<LogFile>,
    /// Log reads (of `logs.files`) that failed in a row.
    log_reads: Misses,
    error_lines: u64,
    pub last_lines: VecDeque<String>,
    /// The `logs.command` follow, once the first tick started it.
    command: Option<CommandFollow>,
}

/// Readings for every host watched during a pause. Dropping it (the pause is
/// over) stops every `logs.command` follow.
pub struct Watch {
    pub hosts: Vec<HostReadings>,
    started: Instant,
    logs: LogSetup,
    /// The quantile of `metrics.latency`, when it reads a histogram.
    quantile: Option<f64>,
}

/// What `[logs]` sets up, for the reasons given when error lines are missing.
struct LogSetup {
    command: Option<String>,
    files: bool,
    pattern: bool,
}

impl Watch {
    pub fn new(cfg: &Config, hosts: &[(usize, String)]) -> Self {
        Watch {
            hosts: hosts
                .iter()
                .map(|(index, name)| HostReadings {
                    index: *index,
                    name: name.clone(),
                    probes: Vec::new(),
                    last_app: None,
                    grown: None,
                    metrics: Misses::default(),
                    latencies: Vec::new(),
                    buckets: None,
                    growth: None,
                    latency: Misses::default(),
                    page_note: None,
                    files: vec![LogFile::default(); cfg.logs.files.len()],
                    log_reads: Misses::default(),
                    error_lines: 0,
                    last_lines: VecDeque::new(),
                    command: None,
                })
                .collect(),
            started: Instant::now(),
            logs: LogSetup {
                command: cfg.logs.command.clone(),
                files: !cfg.logs.files.is_empty(),
                pattern: cfg.logs.error_pattern.is_some(),
            },
            quantile: match &cfg.metrics.latency {
                Some(LatencyQuery::Quantile { q, .. }) => Some(*q),
                _ => None,
            },
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The window of these hosts so far.
    pub fn group(&self, indices: &[usize]) -> GroupWindow {
        let minutes = self.elapsed().as_secs_f64() / 60.0;
        GroupWindow {
            hosts: self
                .hosts
                .iter()
                .filter(|h| indices.contains(&h.index))
                .map(|h| h.window(&self.logs, self.quantile, minutes))
                .collect(),
        }
    }

    pub fn last_lines(&self, name: &str) -> Vec<String> {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .map(|h| match &h.command {
                Some(follow) => follow.lock().last_lines.iter().cloned().collect(),
                None => h.last_lines.iter().cloned().collect(),
            })
            .unwrap_or_default()
    }
}

impl HostReadings {
    fn window(&self, logs: &LogSetup, quantile: Option<f64>, minutes: f64) -> HostWindow {
        let (requests, requests_gap) = match self.metrics.stale() {
            Some(why) => (None, Some(why)),
            None => (self.grown, self.metrics.why.clone()),
        };
        let (app_latency_ms, latency_gap) = match self.latency.stale() {
            Some(why) => (None, Some(why)),
            None => match (&self.growth, quantile) {
                (Some(growth), Some(q)) => match growth.quantile(q) {
                    Ok(seconds) => (Some(1000.0 * seconds), None),
                    Err(why) => (
                        None,
                        Some(format!("no latency reading from {}: {why}", self.name)),
                    ),
                },
                _ => (
                    (!self.latencies.is_empty()).then(|| {
                        1000.0 * self.latencies.iter().sum::<f64>() / self.latencies.len() as f64
                    }),
                    self.latency.why.clone(),
                ),
            },
        };
        let (error_lines_per_min, logs_gap) = match self.error_lines_per_min(logs, minutes) {
            Ok(v) => (Some(v), None),
            Err(why) => (None, Some(why)),
        };
        HostWindow {
            host: self.name.clone(),
            probes: self.probes.clone(),
            error_lines_per_min,
            requests,
            app_latency_ms,
            gaps: Gaps {
                logs: logs_gap,
                requests: requests_gap,
                app_latency: latency_gap,
            },
            notes: self.page_note.iter().cloned().collect(),
        }
    }

    fn error_lines_per_min(&self, logs: &LogSetup, minutes: f64) -> Result<f64, String> {
        let host = &self.name;
        if logs.command.is_none() && !logs.files {
            return Err(format!(
                "[logs] names no files and no command, so the error lines of {host} are unknown"
            ));
        }
        if !logs.pattern {
            return Err(format!(
                "logs.error_pattern is not set, so no log line of {host} counts as an error"
            ));
        }
        if let Some(command) = &logs.command {
            return match &self.command {
                Some(follow) => follow.lock().per_min(host, command),
                None => Err(format!(
                    "the logs of {host} (logs.command `{command}`) are not followed yet"
                )),
            };
        }
        if let Some(why) = self.log_reads.stale() {
            return Err(why);
        }
        let missing: Vec<&str> = self
            .files
            .iter()
            .filter(|f| f.missing)
            .map(|f| f.path.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "log file {} is missing or unreadable on {host} (logs.files), so its error lines are unknown",
                missing.join(", ")
            ));
        }
        if self.files.iter().any(|f| f.offset.is_none()) || minutes <= 0.0 {
            return Err(format!("the logs of {host} have not been read yet"));
        }
        Ok(self.error_lines as f64 / minutes)
    }

    fn keep_line(last_lines: &mut VecDeque<String>, line: &str) {
        if last_lines.len() == KEEP_LINES {
            last_lines.pop_front();
        }
        last_lines.push_back(line.to_owned());
    }
}

/// What one tick read from one host. A host that cannot be read adds no
/// reading, only why: missing data makes the analysis inconclusive, never a
/// pass.
struct Reading {
    probe: Option<Probe>,
    /// `None` without `[metrics] prometheus`.
    metrics: Option<Result<Scraped, String>>,
    /// The read script's output: new log text and the signal file.
    stdout: Result<String, String>,
}

struct Scraped {
    /// The request and error counters, or why they cannot be trusted.
    app: Result<AppSample, String>,
    /// `None` when `metrics.latency` is not configured.
    latency: Option<Result<LatencyRead, String>>,
    /// Lines of the page that could not be read, for the verdict.
    note: Option<String>,
}

fn scrape(cfg: &Config, h: &HostHandle) -> Result<Scraped, String> {
    let name = &h.host.name;
    let target = h
        .host
        .metrics
        .as_ref()
        .ok_or_else(|| format!("{name} has no metrics URL"))?;
    let resp = h
        .with(|t| {
            t.http_get(&target.host, target.port, &target.path, METRICS_TIMEOUT)
                .map_err(StepError::from)
        })
        .map_err(|e| format!("the metrics page of {name} could not be read: {e}"))?;
    if !(200..300).contains(&resp.code) {
        return Err(format!(
            "the metrics page of {name} ({}) answered HTTP {}",
            target.url, resp.code
        ));
    }
    let page = prometheus::parse(&resp.body);
    let m = &cfg.metrics;
    let on = |why: String| format!("{} of {name}: {why}", target.url);
    let app = prometheus::counter(&page, &m.requests, Absent::Missing)
        .map_err(|why| format!("metrics.requests {}", on(why)))
        .and_then(|requests_total| {
            prometheus::counter(&page, &m.errors, Absent::Zero)
                .map_err(|why| format!("metrics.errors {}", on(why)))
                .map(|errors_total| AppSample {
                    at: SystemTime::now(),
                    requests_total,
                    errors_total,
                })
        });
    Ok(Scraped {
        app,
        latency: m.latency.as_ref().map(|l| {
            prometheus::latency(&page, l)
                .map_err(|why| format!("no latency reading from {name}: {why}"))
        }),
        note: prometheus::unreadable_note(&page).map(|n| format!("{} of {name}: {n}", target.url)),
    })
}

fn read(cfg: &Config, h: &HostHandle, env: &HookEnv, script: &str) -> Reading {
    let probe = cfg.health.as_ref().map(|health| {
        match h.with(|t| probe_once(t, health, &h.host, env, &env.release_dir)) {
            Ok(p) => Probe {
                healthy: p.passed,
                latency: p.passed.then_some(p.latency),
                detail: p.detail,
            },
            Err(e) => Probe {
                healthy: false,
                latency: None,
                detail: e.to_string(),
            },
        }
    });
    let metrics = cfg.metrics.prometheus.as_ref().map(|_| scrape(cfg, h));
    let name = &h.host.name;
    let stdout = match h.with(|t| t.exec(script, QUICK).map_err(StepError::from)) {
        Ok(o) if o.success() => Ok(o.stdout),
        Ok(o) => Err(format!(
            "reading the logs of {name} failed: {}",
            o.summary()
        )),
        Err(e) => Err(format!("the logs of {name} could not be read: {e}")),
    };
    Reading {
        probe,
        metrics,
        stdout,
    }
}

/// Fold a reading into a host's readings; returns the word left on the host.
fn apply(cfg: &Config, r: &mut HostReadings, reading: Reading) -> Option<String> {
    r.probes.extend(reading.probe);
    match reading.metrics {
        None => {}
        Some(Err(why)) => {
            if cfg.metrics.latency.is_some() {
                r.latency.missed(why.clone());
            }
            r.metrics.missed(why);
        }
        Some(Ok(scraped)) => {
            r.page_note = scraped.note;
            match scraped.app {
                Ok(app) => {
                    if let Some(prev) = &r.last_app {
                        let step = Requests::step(prev, &app);
                        r.grown = Some(r.grown.map_or(step, |g| g + step));
                    }
                    r.last_app = Some(app);
                    r.metrics.ok();
                }
                Err(why) => r.metrics.missed(why),
            }
            match scraped.latency {
                None => {}
                Some(Ok(LatencyRead::Seconds(v))) => {
                    r.latencies.push(v);
                    r.latency.ok();
                }
                Some(Ok(LatencyRead::Buckets(now))) => {
                    if let Some(before) = &r.buckets {
                        r.growth.get_or_insert_default().add(before, &now);
                    }
                    r.buckets = Some(now);
                    r.latency.ok();
                }
                Some(Err(why)) => r.latency.missed(why),
            }
        }
    }
    match reading.stdout {
        Ok(out) => read_output(cfg, r, &out),
        Err(why) => {
            r.log_reads.missed(why);
            None
        }
    }
}

fn read_output(cfg: &Config, r: &mut HostReadings, stdout: &str) -> Option<String> {
    let mut signal = None;
    let mut file: Option<(usize, u64)> = None;
    let mut text = String::new();
    let mut ended = false;
    let flush = |file: Option<(usize, u64)>, text: &mut String, r: &mut HostReadings| {
        if let Some((i, size)) = file {
            take_log(cfg, r, i, size, text);
        }
        text.clear();
    };
    for line in stdout.split_inclusive('\n') {
        if let Some(rest) = line.trim_end().strip_prefix(FILE_MARK) {
            flush(file.take(), &mut text, r);
            let mut parts = rest.split_whitespace();
            let i = parts.next().and_then(|p| p.parse().ok());
            let size = parts.next().and_then(|p| p.parse().ok());
            file = i.zip(size);
        } else if let Some(rest) = line.trim_end().strip_prefix(MISSING_MARK) {
            flush(file.take(), &mut text, r);
            if let Some(f) = rest
                .trim()
                .parse()
                .ok()
                .and_then(|i: usize| r.files.get_mut(i))
            {
                f.missing = true;
                // It did not exist when the pause began: all it will hold is new.
                f.offset.get_or_insert(0);
            }
        } else if line.trim_end() == END_MARK {
            flush(file.take(), &mut text, r);
            ended = true;
        } else if let Some(rest) = line.strip_prefix(SIGNAL_MARK) {
            flush(file.take(), &mut text, r);
            signal = Some(rest.trim().to_owned());
        } else {
            text.push_str(line);
        }
    }
    flush(file, &mut text, r);
    if cfg.logs.command.is_none() {
        if ended {
            r.log_reads.ok();
        } else {
            r.log_reads
                .missed(format!("the log read on {} was cut short", r.name));
        }
    }
    signal
}

/// Count the complete new lines of one file, and move its offset past them.
fn take_log(cfg: &Config, r: &mut HostReadings, i: usize, size: u64, text: &str) {
    // The newline that began the next mark is not the file's.
    let text = text.strip_suffix('\n').unwrap_or(text);
    let Some(f) = r.files.get_mut(i) else {
        return;
    };
    f.missing = false;
    let Some(off) = f.offset else {
        f.offset = Some(size);
        return;
    };
    // Smaller than what was read: rotated or truncated, read from its start.
    let start = if size >= off { off } else { 0 };
    let complete = text.rfind('\n').map_or(0, |n| n + 1);
    f.offset = Some(start + complete as u64);
    let (lines, _) = text.split_at(complete);
    for line in lines.lines() {
        if cfg
            .logs
            .error_pattern
            .as_ref()
            .is_some_and(|p| p.is_match(line))
        {
            r.error_lines += 1;
        }
        HostReadings::keep_line(&mut r.last_lines, line);
    }
}

/// A `logs.command` running on one host for the pause, on its own
/// connection. Dropped with the [`Watch`], which stops it: the transport ends
/// the command within a second of being told.
struct CommandFollow {
    stop: CancelToken,
    state: Arc<Mutex<CommandLog>>,
}

impl CommandFollow {
    fn start(cfg: &Config, h: &HostHandle) -> CommandFollow {
        let stop = CancelToken::new();
        let state = Arc::new(Mutex::new(CommandLog::default()));
        let follow = CommandFollow {
            stop: stop.clone(),
            state: Arc::clone(&state),
        };
        let Some(script) = tail_script(cfg, &h.host.deploy_to, 0) else {
            return follow;
        };
        // Its own session: a follow blocks the one it runs on. The fleet's
        // connection has already checked (or recorded) the host key.
        let handle = HostHandle::new(h.host.clone(), cfg.ssh.settings(false));
        let pattern = cfg.logs.error_pattern.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("canary-logs {}", h.host.name))
            .spawn(move || follow_command(&handle, &script, pattern.as_ref(), &stop, &state));
        if let Err(e) = spawned {
            follow.lock().down = Some(format!("could not start a thread to follow it: {e}"));
        }
        follow
    }

    fn lock(&self) -> MutexGuard<'_, CommandLog> {
        lock(&self.state)
    }
}

impl Drop for CommandFollow {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn lock(state: &Mutex<CommandLog>) -> MutexGuard<'_, CommandLog> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a `logs.command` follow has seen, bounded: counts and the last lines.
#[derive(Debug, Default)]
struct CommandLog {
    /// When the current run gave its first sign of life; `None` while down.
    running_since: Option<Instant>,
    /// Time followed (backlog excluded) in runs that ended.
    followed_before: Duration,
    error_lines: u64,
    last_lines: VecDeque<String>,
    /// Why the last run ended.
    down: Option<String>,
}

impl CommandLog {
    fn alive(&mut self, now: Instant) -> Instant {
        *self.running_since.get_or_insert(now)
    }

    fn line(&mut self, text: &str, pattern: Option<&Regex>, now: Instant) {
        let since = self.alive(now);
        HostReadings::keep_line(&mut self.last_lines, text);
        if now >= since + COMMAND_BACKLOG && pattern.is_some_and(|p| p.is_match(text)) {
            self.error_lines += 1;
        }
    }

    fn ended(&mut self, why: String, now: Instant) {
        self.followed_before = self.followed(now);
        self.running_since = None;
        self.down = Some(why);
    }

    fn followed(&self, now: Instant) -> Duration {
        let current = self.running_since.map_or(Duration::ZERO, |since| {
            now.saturating_duration_since(since + COMMAND_BACKLOG)
        });
        self.followed_before + current
    }

    fn per_min(&self, host: &str, command: &str) -> Result<f64, String> {
        if self.running_since.is_none() {
            return Err(match &self.down {
                Some(why) => {
                    format!("the logs of {host} are not followed: logs.command `{command}` {why}")
                }
                None => {
                    format!("the logs of {host} (logs.command `{command}`) are not followed yet")
                }
            });
        }
        let minutes = self.followed(Instant::now()).as_secs_f64() / 60.0;
        if minutes <= 0.0 {
            return Err(format!(
                "the logs of {host} (logs.command `{command}`) have only just started"
            ));
        }
        Ok(self.error_lines as f64 / minutes)
    }
}

/// Run the command until `stop`, starting it again when it ends.
fn follow_command(
    handle: &HostHandle,
    script: &str,
    pattern: Option<&Regex>,
    stop: &CancelToken,
    state: &Mutex<CommandLog>,
) {
    while !stop.is_cancelled() {
        let result = handle.with(|t| {
            // Connecting may have outlasted the pause.
            if stop.is_cancelled() {
                return Ok(None);
            }
            t.stream(
                script,
                &mut |line| {
                    lock(state).line(line, pattern, Instant::now());
                    !stop.is_cancelled()
                },
                &|| {
                    lock(state).alive(Instant::now());
                    !stop.is_cancelled()
                },
            )
        });
        if stop.is_cancelled() {
            return;
        }
        let why = match result {
            Ok(Some(code)) => format!("exited with status {code}"),
            Ok(None) => "ended".to_owned(),
            Err(e) => {
                handle.disconnect();
                format!("failed: {e}")
            }
        };
        lock(state).ended(why, Instant::now());
        if stop.wait(COMMAND_RETRY) {
            return;
        }
    }
}

/// Tick every watched host once, in parallel; the first word found wins.
pub fn tick_all(
    cfg: &Config,
    fleet: &Fleet,
    watch: &mut Watch,
    env_for: impl Fn(usize) -> HookEnv + Sync,
) -> Option<String> {
    let indices: Vec<usize> = watch.hosts.iter().map(|h| h.index).collect();
    let mut scripts = Vec::with_capacity(watch.hosts.len());
    for r in &mut watch.hosts {
        let h = &fleet.hosts[r.index];
        if cfg.logs.command.is_some() && r.command.is_none() {
            r.command = Some(CommandFollow::start(cfg, h));
        }
        let deploy_to = &h.host.deploy_to;
        for (f, path) in r.files.iter_mut().zip(resolved_files(cfg, deploy_to)) {
            f.path = path;
        }
        let files: Vec<(&str, Option<u64>)> = r
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.offset))
            .collect();
        scripts.push(canary_read_script(
            cfg.logs.command.is_none(),
            &Layout::new(deploy_to),
            &files,
        ));
    }
    let readings = fleet.each(&indices, |i, h| {
        let script = indices
            .iter()
            .position(|&x| x == i)
            .and_then(|pos| scripts.get(pos))
            .map_or("", String::as_str);
        read(cfg, h, &env_for(i), script)
    });
    let mut word = None;
    for (r, reading) in watch.hosts.iter_mut().zip(readings) {
        let w = apply(cfg, r, reading);
        word = word.or(w);
    }
    word
}

#[cfg(test)]
mod tests;
