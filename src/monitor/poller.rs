//! One host's watchers: a poller that takes turns at the host's state, health,
//! `/proc` and metrics page over one kept-open connection, and a log follow
//! over another. Each runs on its own thread; a host that drops is retried
//! with backoff and stalls nothing else.

use std::cell::RefCell;
use std::fmt::Display;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::logs::{self, Resync, TailEvent, monitor_tail_script};
use super::system::{self, CpuTimes};
use super::view::{HostView, this_machine};
use super::{AppSample, HealthSample, HealthStatus, HostKey, LogInbox, MonitorEvent, SystemSample};
use crate::config::Config;
use crate::host::health::probe_once;
use crate::host::readings::{monitor_tick_script, split_monitor_tick};
use crate::host::{HookEnv, Layout, parse_probe, probe_script};
use crate::model::Host;
use crate::model::prometheus::{self, Absent};
use crate::model::time::human_duration;
use crate::transport::CancelToken;
use crate::transport::ssh::SshSettings;
use crate::transport::{BreaksSession, HostHandle, Transport};

/// How often the host's state is looked at (a cheap fingerprint; the full
/// read only when it changed) and its `/proc` sampled, in one command.
const TICK_INTERVAL: Duration = Duration::from_secs(2);
/// Read the full state this often even when the fingerprint says nothing
/// changed, in case a change slipped past it (same size, same second).
const FULL_STATE_REFRESH: Duration = Duration::from_secs(60);
/// No task runs more often than this, whatever the config says.
const MIN_INTERVAL: Duration = Duration::from_millis(250);
/// A state read or `/proc` sample that takes longer means the host is in
/// trouble; the connection is dropped and reopened.
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(5);
const METRICS_TIMEOUT: Duration = Duration::from_secs(3);
const RECONNECT_FIRST: Duration = Duration::from_secs(1);
/// A console wants a host that came back to show up within about two
/// seconds; a refused connection costs the host next to nothing.
const RECONNECT_MAX: Duration = Duration::from_secs(2);
/// Log lines shown from before the monitor started (per file).
pub(super) const BACKLOG_LINES: usize = 200;

/// Everything one host's threads need.
#[derive(Clone)]
pub(super) struct HostJob {
    pub key: HostKey,
    pub env: String,
    pub host: Host,
    pub config: Arc<Config>,
    pub settings: SshSettings,
    pub stop: CancelToken,
    pub inbox: Arc<LogInbox>,
}

/// Follow the host's logs until stopped; nothing when `[logs]` names nothing.
pub(super) fn follow_logs(job: HostJob, send: impl Fn(MonitorEvent) -> bool) {
    let backlog = BACKLOG_LINES.min(super::log_lines_per_host(&job.config));
    let Some((script, marked)) = monitor_tail_script(&job.config, &job.host.deploy_to, backlog)
    else {
        return;
    };
    let key = job.key;
    let inbox = job.inbox.clone();
    let resync = RefCell::new(Resync::new(marked, backlog));
    logs::follow(
        key.host,
        job.host,
        job.settings,
        script,
        job.config.logs.error_pattern.clone(),
        job.stop,
        |ev| match ev {
            TailEvent::Up { .. } => {
                resync.borrow_mut().restarted();
                true
            }
            TailEvent::Line(line) => {
                for line in resync.borrow_mut().line(line) {
                    if inbox.put(key, line) && !send(MonitorEvent::LogsWaiting { key }) {
                        return false;
                    }
                }
                true
            }
            TailEvent::Down {
                reason, retry_in, ..
            } => send(MonitorEvent::LogsDown {
                key,
                reason: format!("{reason}; retrying in {}", human_duration(retry_in)),
            }),
        },
    );
}

/// Poll the host until stopped.
pub(super) fn watch(job: HostJob, send: impl Fn(MonitorEvent) -> bool) {
    let mut tasks = vec![(Task::Tick, TICK_INTERVAL)];
    if let Some(h) = &job.config.health {
        tasks.push((Task::Health, h.interval));
    }
    if job.host.metrics.is_some() {
        tasks.push((Task::App, job.config.metrics.interval));
    }
    let mut poller = Poller {
        handle: HostHandle::new(job.host.clone(), job.settings.clone()),
        layout: Layout::new(&job.host.deploy_to),
        job,
        send,
        fingerprint: None,
        full_read_at: None,
        view: None,
        cpu: None,
    };
    poller.run(&tasks);
}

#[derive(Debug, Clone, Copy)]
enum Task {
    /// The state fingerprint and the `/proc` sample, in one command.
    Tick,
    Health,
    App,
}

/// What a task left behind.
enum Flow {
    Go,
    /// The connection broke; reconnect before anything else.
    Broke,
    /// The monitor is gone.
    Stop,
}

struct Poller<S> {
    job: HostJob,
    send: S,
    handle: HostHandle,
    layout: Layout,
    fingerprint: Option<String>,
    full_read_at: Option<Instant>,
    /// The view last sent.
    view: Option<HostView>,
    /// The previous `/proc/stat` reading on this connection.
    cpu: Option<CpuTimes>,
}

impl<S: Fn(MonitorEvent) -> bool> Poller<S> {
    fn emit(&self, ev: MonitorEvent) -> Flow {
        if (self.send)(ev) {
            Flow::Go
        } else {
            Flow::Stop
        }
    }

    fn run(&mut self, tasks: &[(Task, Duration)]) {
        let key = self.job.key;
        let mut connected = false;
        let mut backoff = RECONNECT_FIRST;
        let mut due: Vec<Instant> = vec![Instant::now(); tasks.len()];
        while !self.job.stop.is_cancelled() {
            if let Err(e) = self.handle.connect() {
                connected = false;
                self.cpu = None;
                let reason = e.to_string();
                if let Flow::Stop = self.emit(MonitorEvent::Disconnected {
                    key,
                    reason: reason.clone(),
                    retry_in: backoff,
                }) {
                    return;
                }
                if self.job.config.health.is_some()
                    && let Flow::Stop = self.health_unknown(format!("not connected: {reason}"))
                {
                    return;
                }
                if self.job.stop.wait(backoff) {
                    return;
                }
                backoff = (backoff * 2).min(RECONNECT_MAX);
                continue;
            }
            if !connected {
                connected = true;
                backoff = RECONNECT_FIRST;
                // Whatever happened while away: read and send it all afresh.
                self.fingerprint = None;
                self.view = None;
                due.fill(Instant::now());
                if let Flow::Stop = self.emit(MonitorEvent::Connected { key }) {
                    return;
                }
            }
            let mut broke = false;
            for (i, (task, interval)) in tasks.iter().enumerate() {
                let now = Instant::now();
                if due[i] > now {
                    continue;
                }
                due[i] = next_due(due[i], *interval, now);
                match self.run_task(*task) {
                    Flow::Go => {}
                    Flow::Broke => {
                        broke = true;
                        break;
                    }
                    Flow::Stop => return,
                }
            }
            if broke {
                // The handle dropped the session: reconnect now, and report
                // the host gone only if that fails.
                self.cpu = None;
                continue;
            }
            let next = due.iter().min().copied().unwrap_or_else(Instant::now);
            if self
                .job
                .stop
                .wait(next.saturating_duration_since(Instant::now()))
            {
                return;
            }
        }
    }

    fn run_task(&mut self, task: Task) -> Flow {
        match task {
            Task::Tick => self.tick(),
            Task::Health => self.probe_health(),
            Task::App => self.sample_app(),
        }
    }

    /// A failed step: only a broken connection changes the course.
    fn failed(&self, what: &str, e: &(impl BreaksSession + Display)) -> Flow {
        tracing::debug!(host = %self.job.host.name, what, error = %e, "monitor step failed");
        if e.breaks_session() {
            Flow::Broke
        } else {
            Flow::Go
        }
    }

    /// The host's `/proc` sample and state fingerprint in one round trip;
    /// the full state only when the fingerprint moved.
    fn tick(&mut self) -> Flow {
        let out = match self
            .handle
            .with(|t| t.exec(&monitor_tick_script(&self.layout), SAMPLE_TIMEOUT))
        {
            Ok(out) => out,
            Err(e) => return self.failed("state fingerprint and /proc sample", &e),
        };
        let (proc, fingerprint) = split_monitor_tick(&out.stdout);
        if let Flow::Stop = self.system_sample(proc, &out.stderr) {
            return Flow::Stop;
        }
        match fingerprint {
            Some(f) => self.read_state(f.to_owned()),
            None => Flow::Go,
        }
    }

    fn read_state(&mut self, fingerprint: String) -> Flow {
        let fresh = self
            .full_read_at
            .is_some_and(|t| t.elapsed() < FULL_STATE_REFRESH);
        if fresh && self.fingerprint.as_ref() == Some(&fingerprint) {
            return self.recheck_liveness();
        }
        // `host::probe` with a monitor's timeout: a probe must not hold the
        // poller for the 30 s a change's bookkeeping may take.
        let out = match self
            .handle
            .with(|t| t.exec(&probe_script(&self.layout), SAMPLE_TIMEOUT))
        {
            Ok(out) if out.success() => out,
            Ok(out) => {
                tracing::debug!(host = %self.job.host.name, detail = %out.summary(), "cannot read host state");
                return Flow::Go;
            }
            Err(e) => return self.failed("host state", &e),
        };
        self.fingerprint = Some(fingerprint);
        self.full_read_at = Some(Instant::now());
        let view = HostView::from_state(&parse_probe(&out.stdout));
        if self.view.as_ref() == Some(&view) {
            return Flow::Go;
        }
        self.view = Some(view.clone());
        self.emit(MonitorEvent::State {
            key: self.job.key,
            state: view,
        })
    }

    /// A change's process that dies writes nothing more to the host: its
    /// journal (and so the fingerprint) stays as it was. On this machine a
    /// pid check tells at each state tick that it is gone.
    fn recheck_liveness(&mut self) -> Flow {
        let Some(view) = &self.view else {
            return Flow::Go;
        };
        let Some(change) = &view.change else {
            return Flow::Go;
        };
        let now = crate::signal::liveness(&change.operator, change.pid, this_machine());
        if now == change.liveness {
            return Flow::Go;
        }
        let mut view = view.clone();
        if let Some(c) = view.change.as_mut() {
            c.liveness = now;
        }
        self.view = Some(view.clone());
        self.emit(MonitorEvent::State {
            key: self.job.key,
            state: view,
        })
    }

    fn health_unknown(&self, detail: String) -> Flow {
        self.emit(MonitorEvent::Health {
            key: self.job.key,
            sample: HealthSample {
                at: SystemTime::now(),
                status: HealthStatus::Unknown,
                latency: None,
                detail,
            },
        })
    }

    fn probe_health(&mut self) -> Flow {
        let Some(health) = &self.job.config.health else {
            return Flow::Go;
        };
        let Some(view) = &self.view else {
            return self.health_unknown("the host's state is not read yet".into());
        };
        let Some(current) = view.current.clone() else {
            return self.health_unknown("nothing deployed".into());
        };
        let env = HookEnv {
            env: self.job.env.clone(),
            host: self.job.host.name.clone(),
            release: current,
            previous: view.previous.clone(),
            deploy_to: self.job.host.deploy_to.clone(),
            release_dir: self.layout.current(),
            host_vars: self.job.host.vars.clone(),
            slot: None,
        };
        let host = &self.job.host;
        match self
            .handle
            .with(|t| probe_once(t, health, host, &env, &env.release_dir))
        {
            Ok(r) => self.emit(MonitorEvent::Health {
                key: self.job.key,
                sample: HealthSample {
                    at: SystemTime::now(),
                    status: if r.passed {
                        HealthStatus::Healthy
                    } else {
                        HealthStatus::Unhealthy
                    },
                    latency: Some(r.latency),
                    detail: r.detail,
                },
            }),
            // No answer (a timeout, a dropped link) says nothing about health.
            Err(e) => match self.health_unknown(e.to_string()) {
                Flow::Stop => Flow::Stop,
                _ => self.failed("health probe", &e),
            },
        }
    }

    fn system_sample(&mut self, proc: &str, stderr: &str) -> Flow {
        let sample = match system::parse_proc(proc) {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(host = %self.job.host.name, error = %e, %stderr, "no host metrics");
                return Flow::Go;
            }
        };
        let cpu_pct = match (self.cpu, sample.cpu) {
            (Some(before), Some(after)) => system::cpu_percent(before, after),
            _ => None,
        };
        self.cpu = sample.cpu;
        self.emit(MonitorEvent::System {
            key: self.job.key,
            sample: SystemSample {
                at: SystemTime::now(),
                cpu_pct,
                mem_used: sample.mem_used,
                mem_total: sample.mem_total,
                load1: sample.load1,
            },
        })
    }

    fn sample_app(&mut self) -> Flow {
        let Some(target) = &self.job.host.metrics else {
            return Flow::Go;
        };
        let get = |t: &mut dyn Transport| {
            t.http_get(&target.host, target.port, &target.path, METRICS_TIMEOUT)
        };
        let page = match self.handle.with(get) {
            Ok(r) if (200..300).contains(&r.code) => r.body,
            Ok(r) => {
                tracing::debug!(host = %self.job.host.name, url = %target.url, code = r.code, "metrics page refused");
                return Flow::Go;
            }
            Err(e) => return self.failed("metrics page", &e),
        };
        // The pane shows rates only from counters that can be trusted: a
        // selector matching nothing, or unreadable lines that may hold the
        // counter, give no sample rather than a zero.
        let page = prometheus::parse(&page);
        let metrics = &self.job.config.metrics;
        let read = prometheus::counter(&page, &metrics.requests, Absent::Missing).and_then(|r| {
            prometheus::counter(&page, &metrics.errors, Absent::Zero).map(|e| (r, e))
        });
        match read {
            Ok((requests_total, errors_total)) => self.emit(MonitorEvent::App {
                key: self.job.key,
                sample: AppSample {
                    at: SystemTime::now(),
                    requests_total,
                    errors_total,
                },
            }),
            Err(why) => {
                tracing::debug!(host = %self.job.host.name, url = %target.url, %why, "app counters unread");
                Flow::Go
            }
        }
    }
}

/// The next time a task with `interval` is due: on its beat, unless it fell
/// behind, then one interval from now (no burst to catch up).
fn next_due(due: Instant, interval: Duration, now: Instant) -> Instant {
    let interval = interval.max(MIN_INTERVAL);
    let next = due + interval;
    if next <= now { now + interval } else { next }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_task_does_not_burst_to_catch_up() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        assert_eq!(next_due(t0, s, t0), t0 + s);
        assert_eq!(next_due(t0, s, t0 + s * 5), t0 + s * 6);
        assert_eq!(
            next_due(t0, Duration::ZERO, t0),
            t0 + MIN_INTERVAL,
            "a zero interval cannot spin"
        );
    }
}
