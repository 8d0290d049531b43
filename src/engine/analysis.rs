//! Gathering what the canary analysis judges: during a pause, every tick
//! probes each host's health, reads its app counters, and reads the log lines
//! appended since the last tick (counting those that match `error_pattern`).
//! The same round trip picks up a word left on the host by `shipdeck
//! continue`/`abort`. The judging itself is pure, in `canary::analyse`.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

use super::canary::{GroupWindow, HostWindow, Probe, Requests};
use super::health::probe_once;
use crate::config::Config;
use crate::host::{HookEnv, Layout, QUICK, StepError, sh::quote};
use crate::monitor::AppSample;
use crate::monitor::logs::resolved_files;
use crate::monitor::prom::{self, MetricSelector};
use crate::transport::{Fleet, HostHandle};

/// Log bytes read per file and tick; a log growing faster than this is
/// sampled, not read whole.
const MAX_LOG_READ: u64 = 1 << 20;
/// Lines of each host kept to show when it breaches.
const KEEP_LINES: usize = 12;
const METRICS_TIMEOUT: Duration = Duration::from_secs(2);
const FILE_MARK: &str = "@@shipdeck-file ";
const SIGNAL_MARK: &str = "@@shipdeck-signal ";
const END_MARK: &str = "@@shipdeck-end";

/// One host's readings over the current pause.
pub struct HostReadings {
    pub index: usize,
    pub name: String,
    probes: Vec<Probe>,
    first_app: Option<AppSample>,
    last_app: Option<AppSample>,
    /// Readings of `metrics.latency`, in seconds.
    latencies: Vec<f64>,
    /// Per log file: bytes read so far; `None` until the first tick sets the
    /// starting point (what was there before the pause is not judged).
    offsets: Vec<Option<u64>>,
    error_lines: u64,
    logs_followed: bool,
    pub last_lines: VecDeque<String>,
}

/// Readings for every host watched during a pause.
pub struct Watch {
    pub hosts: Vec<HostReadings>,
    started: Instant,
    selectors: Option<Selectors>,
}

/// The counters and the latency gauge read from each host's metrics page.
struct Selectors {
    requests: MetricSelector,
    errors: MetricSelector,
    latency: Option<MetricSelector>,
}

impl Watch {
    pub fn new(cfg: &Config, hosts: &[(usize, String)]) -> Self {
        let selectors = cfg.metrics.prometheus.as_ref().and_then(|_| {
            Some(Selectors {
                requests: MetricSelector::parse(&cfg.metrics.requests).ok()?,
                errors: MetricSelector::parse(&cfg.metrics.errors).ok()?,
                latency: cfg
                    .metrics
                    .latency
                    .as_deref()
                    .and_then(|l| MetricSelector::parse(l).ok()),
            })
        });
        Watch {
            hosts: hosts
                .iter()
                .map(|(index, name)| HostReadings {
                    index: *index,
                    name: name.clone(),
                    probes: Vec::new(),
                    first_app: None,
                    last_app: None,
                    latencies: Vec::new(),
                    offsets: vec![None; cfg.logs.files.len()],
                    error_lines: 0,
                    logs_followed: false,
                    last_lines: VecDeque::new(),
                })
                .collect(),
            started: Instant::now(),
            selectors,
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
                .map(|h| HostWindow {
                    host: h.name.clone(),
                    probes: h.probes.clone(),
                    error_lines_per_min: (h.logs_followed && minutes > 0.0)
                        .then(|| h.error_lines as f64 / minutes),
                    requests: match (&h.first_app, &h.last_app) {
                        (Some(a), Some(b)) if b.at > a.at => Requests::between(a, b),
                        _ => None,
                    },
                    app_latency_ms: (!h.latencies.is_empty()).then(|| {
                        1000.0 * h.latencies.iter().sum::<f64>() / h.latencies.len() as f64
                    }),
                })
                .collect(),
        }
    }

    pub fn last_lines(&self, name: &str) -> Vec<String> {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .map(|h| h.last_lines.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// What one tick read from one host. A host that cannot be read adds no
/// reading: missing data makes the analysis inconclusive, never a pass.
struct Reading {
    probe: Option<Probe>,
    app: Option<AppSample>,
    /// `metrics.latency`, in seconds.
    latency: Option<f64>,
    /// The read script's output: new log text and the signal file.
    stdout: Option<String>,
}

fn read(
    cfg: &Config,
    h: &HostHandle,
    env: &HookEnv,
    script: &str,
    selectors: &Option<Selectors>,
) -> Reading {
    let probe =
        cfg.health.as_ref().map(
            |health| match h.with(|t| probe_once(t, health, &h.host, env)) {
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
            },
        );
    let scrape = match (&h.host.metrics, selectors) {
        (Some(target), Some(_)) => h
            .with(|t| {
                t.http_get(&target.host, target.port, &target.path, METRICS_TIMEOUT)
                    .map_err(StepError::from)
            })
            .ok()
            .filter(|resp| (200..300).contains(&resp.code))
            .and_then(|resp| prom::parse_page(&resp.body).ok()),
        _ => None,
    };
    let (app, latency) = match (&scrape, selectors) {
        (Some(scrape), Some(sel)) => (
            Some(AppSample {
                at: SystemTime::now(),
                requests_total: prom::sum(scrape, &sel.requests),
                errors_total: prom::sum(scrape, &sel.errors),
            }),
            // A quantile the app has not observed yet is NaN, not a reading.
            sel.latency
                .as_ref()
                .map(|l| prom::sum(scrape, l))
                .filter(|v| *v > 0.0),
        ),
        _ => (None, None),
    };
    let stdout = h
        .with(|t| t.exec(script, QUICK).map_err(StepError::from))
        .ok()
        .filter(|o| o.success())
        .map(|o| o.stdout);
    Reading {
        probe,
        app,
        latency,
        stdout,
    }
}

/// Fold a reading into a host's readings; returns the word left on the host.
fn apply(cfg: &Config, r: &mut HostReadings, reading: Reading) -> Option<String> {
    r.probes.extend(reading.probe);
    r.latencies.extend(reading.latency);
    if let Some(sample) = reading.app {
        r.first_app.get_or_insert_with(|| sample.clone());
        r.last_app = Some(sample);
    }
    read_output(cfg, r, reading.stdout.as_deref()?)
}

/// New bytes of each log file since its offset, and the signal file.
fn read_script(cfg: &Config, layout: &Layout, deploy_to: &str, offsets: &[Option<u64>]) -> String {
    let mut s = String::new();
    if cfg.logs.command.is_none() {
        for (i, (file, off)) in resolved_files(cfg, deploy_to)
            .iter()
            .zip(offsets)
            .enumerate()
        {
            // The first tick only learns where the file ends.
            let read = match off {
                None => String::new(),
                Some(off) => format!(
                    "if [ \"$s\" -ge {off} ]; then tail -c +{} {file} | head -c {MAX_LOG_READ}; else head -c {MAX_LOG_READ} {file}; fi",
                    off + 1
                ),
            };
            s.push_str(&format!(
                "s=$(wc -c < {file} 2>/dev/null) || s=0\nprintf '\\n{FILE_MARK}{i} %s\\n' \"$s\"\n{read}\n"
            ));
        }
        // Every mark starts with a newline of its own, so the text before it
        // ends exactly where the file's bytes did.
        s.push_str(&format!("printf '\\n{END_MARK}\\n'\n"));
    }
    s.push_str(&format!(
        "if [ -f {sig} ]; then printf '\\n{SIGNAL_MARK}'; cat {sig}; fi\n",
        sig = quote(&layout.signal())
    ));
    s
}

fn read_output(cfg: &Config, r: &mut HostReadings, stdout: &str) -> Option<String> {
    let mut signal = None;
    let mut file: Option<(usize, u64)> = None;
    let mut text = String::new();
    let flush = |file: Option<(usize, u64)>, text: &mut String, r: &mut HostReadings| {
        if let Some((i, size)) = file {
            take_log(cfg, r, i, size, text);
        }
        text.clear();
    };
    for line in stdout.split_inclusive('\n') {
        if let Some(rest) = line.trim_end().strip_prefix(FILE_MARK) {
            flush(file.take(), &mut text, r);
            let mut parts = rest.split(' ');
            let i = parts.next().and_then(|p| p.parse().ok());
            let size = parts.next().and_then(|p| p.parse().ok());
            file = i.zip(size);
        } else if line.trim_end() == END_MARK {
            flush(file.take(), &mut text, r);
        } else if let Some(rest) = line.strip_prefix(SIGNAL_MARK) {
            flush(file.take(), &mut text, r);
            signal = Some(rest.trim().to_owned());
        } else {
            text.push_str(line);
        }
    }
    flush(file, &mut text, r);
    signal
}

/// Count the complete new lines of one file, and move its offset past them.
fn take_log(cfg: &Config, r: &mut HostReadings, i: usize, size: u64, text: &str) {
    r.logs_followed = true;
    // The newline that began the next mark is not the file's.
    let text = text.strip_suffix('\n').unwrap_or(text);
    let Some(slot) = r.offsets.get_mut(i) else {
        return;
    };
    let Some(off) = *slot else {
        *slot = Some(size);
        return;
    };
    let start = if size >= off { off } else { 0 };
    let complete = text.rfind('\n').map_or(0, |n| n + 1);
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
        if r.last_lines.len() == KEEP_LINES {
            r.last_lines.pop_front();
        }
        r.last_lines.push_back(line.to_owned());
    }
    *slot = Some(start + complete as u64);
}

/// Tick every watched host once, in parallel; the first word found wins.
pub fn tick_all(
    cfg: &Config,
    fleet: &Fleet,
    watch: &mut Watch,
    env_for: impl Fn(usize) -> HookEnv + Sync,
) -> Option<String> {
    let indices: Vec<usize> = watch.hosts.iter().map(|h| h.index).collect();
    let scripts: Vec<String> = watch
        .hosts
        .iter()
        .map(|r| {
            let deploy_to = &fleet.hosts[r.index].host.deploy_to;
            read_script(cfg, &Layout::new(deploy_to), deploy_to, &r.offsets)
        })
        .collect();
    let selectors = &watch.selectors;
    let readings = fleet.each(&indices, |i, h| {
        let pos = indices.iter().position(|&x| x == i).expect("watched");
        read(cfg, h, &env_for(i), &scripts[pos], selectors)
    });
    let mut word = None;
    for (r, reading) in watch.hosts.iter_mut().zip(readings) {
        let w = apply(cfg, r, reading);
        word = word.or(w);
    }
    word
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let toml = r#"
[app]
name = "a"
artifact = "dist"
deploy_to = "/srv/a"
[logs]
files = ["log/app.log"]
error_pattern = "ERROR"
[environments.p]
hosts = ["web-1"]
"#;
        Config::parse(std::path::Path::new("shipdeck.toml"), toml).unwrap()
    }

    fn readings(cfg: &Config) -> HostReadings {
        let mut w = Watch::new(cfg, &[(0, "web-1".to_owned())]);
        w.hosts.remove(0)
    }

    #[test]
    fn the_first_read_sets_where_the_log_starts_and_later_ones_count_errors() {
        let cfg = config();
        let mut r = readings(&cfg);
        assert_eq!(
            read_output(&cfg, &mut r, "\n@@shipdeck-file 0 100\n\n@@shipdeck-end\n"),
            None
        );
        assert_eq!(r.offsets, vec![Some(100)]);
        // Two whole lines and a half-written third: the third waits.
        let out = "\n@@shipdeck-file 0 160\nok 1\nERROR boom\nERR\n@@shipdeck-end\n";
        assert_eq!(read_output(&cfg, &mut r, out), None);
        assert_eq!(r.error_lines, 1);
        assert_eq!(r.offsets, vec![Some(100 + 16)]);
        assert_eq!(r.last_lines, ["ok 1", "ERROR boom"]);
        assert!(r.logs_followed);
    }

    #[test]
    fn a_rotated_log_is_read_from_its_start_and_a_word_is_picked_up() {
        let cfg = config();
        let mut r = readings(&cfg);
        read_output(&cfg, &mut r, "\n@@shipdeck-file 0 500\n\n@@shipdeck-end\n");
        let out = "\n@@shipdeck-file 0 10\nERROR new\n\n@@shipdeck-end\n\n@@shipdeck-signal {\"change\":\"c\"}\n";
        assert_eq!(
            read_output(&cfg, &mut r, out).as_deref(),
            Some("{\"change\":\"c\"}")
        );
        assert_eq!(r.error_lines, 1);
        assert_eq!(r.offsets, vec![Some(10)]);
    }
}
