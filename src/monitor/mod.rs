//! Watching hosts: log tails, health probes, host and app metrics, and what
//! each host runs, on connections of their own (a deploy never waits behind a
//! probe, and a probe never waits behind a log follow).
//!
//! [`Monitor`] runs two threads per host, each with its own connection: one
//! follows the logs (a follow blocks its session), the other takes turns at
//! the host's state, health, `/proc` and metrics page. The poller sends
//! [`MonitorEvent`]s to one sink; log lines wait in a bounded [`LogInbox`]
//! that the console empties once a frame ([`Monitor::take_logs`]), so a
//! flood of lines is never a queue. [`MonitorState`] reduces both into the
//! bounded picture a console draws from.

mod inbox;
pub mod logs;
mod poller;
pub mod prom;
mod state;
mod system;
mod view;

use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

pub use inbox::LogInbox;
pub use logs::{LogLine, TailEvent};
pub use state::{HostMonitor, LogEntry, MAX_HELD_LINES, MonitorState, log_lines_per_host};
pub use view::{HostView, VIEW_HISTORY};

pub use crate::model::sample::{AppSample, HealthSample, HealthStatus};

use crate::config::Config;
use crate::transport::CancelToken;
use crate::transport::ssh::SshSettings;

/// Which host: environment index and host index, in config order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostKey {
    pub env: usize,
    pub host: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MonitorEvent {
    /// One log line (its `error` flag set from `logs.error_pattern`).
    Log {
        key: HostKey,
        line: LogLine,
    },
    /// Lines are waiting in the monitor's inbox ([`Monitor::take_logs`]);
    /// sent once until they are taken, however many arrive.
    LogsWaiting {
        key: HostKey,
    },
    /// The inbox held the newest lines only: `count` older ones of this host
    /// were never taken.
    LogsDropped {
        key: HostKey,
        count: u64,
    },
    /// The log follow was lost; it is being retried.
    LogsDown {
        key: HostKey,
        reason: String,
    },
    Health {
        key: HostKey,
        sample: HealthSample,
    },
    System {
        key: HostKey,
        sample: SystemSample,
    },
    App {
        key: HostKey,
        sample: AppSample,
    },
    /// What the host runs now; sent on (re)connect and whenever it changes.
    State {
        key: HostKey,
        state: HostView,
    },
    /// The host cannot be reached; the next attempt is in `retry_in`.
    Disconnected {
        key: HostKey,
        reason: String,
        retry_in: Duration,
    },
    Connected {
        key: HostKey,
    },
}

impl MonitorEvent {
    pub fn key(&self) -> HostKey {
        match self {
            MonitorEvent::Log { key, .. }
            | MonitorEvent::LogsWaiting { key }
            | MonitorEvent::LogsDropped { key, .. }
            | MonitorEvent::LogsDown { key, .. }
            | MonitorEvent::Health { key, .. }
            | MonitorEvent::System { key, .. }
            | MonitorEvent::App { key, .. }
            | MonitorEvent::State { key, .. }
            | MonitorEvent::Disconnected { key, .. }
            | MonitorEvent::Connected { key } => *key,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SystemSample {
    pub at: SystemTime,
    /// Busy share of all CPUs since the previous sample; `None` for the first
    /// sample after a (re)connect.
    pub cpu_pct: Option<f64>,
    /// Bytes: total minus `MemAvailable`.
    pub mem_used: u64,
    /// Bytes.
    pub mem_total: u64,
    pub load1: f64,
}

/// Calls the sink until the monitor is dropped, and never after: dropping
/// waits for a call in progress, so a console that dropped its monitor gets
/// no late event.
struct Gate {
    open: RwLock<bool>,
    sink: Arc<dyn Fn(MonitorEvent) + Send + Sync>,
}

impl Gate {
    /// False once the monitor is gone.
    fn send(&self, ev: MonitorEvent) -> bool {
        let open = self.open.read().unwrap_or_else(|p| p.into_inner());
        if *open {
            (self.sink)(ev);
        }
        *open
    }

    fn close(&self) {
        *self.open.write().unwrap_or_else(|p| p.into_inner()) = false;
    }
}

/// Watches every host of every environment until dropped.
pub struct Monitor {
    stop: CancelToken,
    gate: Arc<Gate>,
    inbox: Arc<LogInbox>,
    threads: Vec<JoinHandle<()>>,
}

impl Monitor {
    /// Start watching. `sink` is called from the monitor's threads, one event
    /// at a time per thread; it must not block (send to a channel).
    pub fn start(
        config: Arc<Config>,
        settings: SshSettings,
        sink: Arc<dyn Fn(MonitorEvent) + Send + Sync>,
    ) -> Monitor {
        let stop = CancelToken::new();
        let gate = Arc::new(Gate {
            open: RwLock::new(true),
            sink,
        });
        let shape: Vec<usize> = config.environments.iter().map(|e| e.hosts.len()).collect();
        let inbox = Arc::new(LogInbox::new(&shape, state::log_lines_per_host(&config)));
        let mut threads = Vec::new();
        for (e, env) in config.environments.iter().enumerate() {
            for (h, host) in env.hosts.iter().enumerate() {
                let key = HostKey { env: e, host: h };
                let job = poller::HostJob {
                    key,
                    env: env.name.clone(),
                    host: host.clone(),
                    config: config.clone(),
                    settings: settings.clone(),
                    stop: stop.clone(),
                    inbox: inbox.clone(),
                };
                let g = gate.clone();
                let send = move |ev: MonitorEvent| g.send(ev);
                threads.extend(spawn(format!("monitor {}", host.name), {
                    let (job, send) = (job.clone(), send.clone());
                    move || poller::watch(job, send)
                }));
                threads.extend(spawn(format!("logs {}", host.name), move || {
                    poller::follow_logs(job, send)
                }));
            }
        }
        Monitor {
            stop,
            gate,
            inbox,
            threads,
        }
    }

    /// The log lines that arrived since the last call, oldest first, and
    /// how many each host had to drop meanwhile; call it when told
    /// [`MonitorEvent::LogsWaiting`] (at most once a frame is plenty).
    pub fn take_logs(&self) -> Vec<MonitorEvent> {
        self.inbox.take()
    }

    /// Stop and wait for every thread to end (a connect or command in flight
    /// can take up to its timeout). Dropping stops without waiting.
    pub fn shutdown(mut self) {
        self.stop.cancel();
        self.gate.close();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn spawn(name: String, f: impl FnOnce() + Send + 'static) -> Option<JoinHandle<()>> {
    match std::thread::Builder::new().name(name.clone()).spawn(f) {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::error!(thread = %name, error = %e, "cannot start a monitor thread");
            None
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.cancel();
        self.gate.close();
    }
}
