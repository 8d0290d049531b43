//! `shipdeck logs`: every host's log follow, merged, prefixed with the host.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

use crate::engine::{CancelToken, Engine, EngineError};
use crate::monitor::logs::{TailEvent, follow as follow_host, tail_script};

pub fn follow(
    engine: &Engine,
    env: &str,
    only: Option<&str>,
    lines: usize,
    json: bool,
) -> Result<i32, EngineError> {
    let (environment, _) = engine.environment(env)?;
    let cfg = &engine.config;
    let hosts: Vec<_> = environment
        .hosts
        .iter()
        .filter(|h| only.is_none_or(|o| h.name == o || h.label.as_deref() == Some(o)))
        .cloned()
        .collect();
    if hosts.is_empty() {
        let names: Vec<&str> = environment.hosts.iter().map(|h| h.shown()).collect();
        return Err(EngineError::Usage(format!(
            "{env} has no host {:?} (have: {})",
            only.unwrap_or_default(),
            names.join(", ")
        )));
    }
    let width = hosts
        .iter()
        .map(|h| h.shown().chars().count())
        .max()
        .unwrap_or(8);
    let settings = cfg.ssh.settings(false);
    let (tx, rx) = std::sync::mpsc::sync_channel::<TailEvent>(QUEUE);
    let dropped: Arc<Vec<AtomicU64>> = Arc::new(hosts.iter().map(|_| AtomicU64::new(0)).collect());
    let stop = CancelToken::new();
    let mut names = Vec::new();
    for (i, host) in hosts.into_iter().enumerate() {
        let Some(script) = tail_script(cfg, &host.deploy_to, lines) else {
            return Err(EngineError::Usage(format!(
                "{}: [logs] names no files and no command to follow",
                cfg.path.display()
            )));
        };
        names.push(host.shown().to_owned());
        let (tx, dropped) = (tx.clone(), dropped.clone());
        let (settings, pattern, stop) = (
            settings.clone(),
            cfg.logs.error_pattern.clone(),
            stop.clone(),
        );
        std::thread::spawn(move || {
            follow_host(i, host, settings, script, pattern, stop, |ev| {
                offer(&tx, ev, &dropped[i])
            })
        });
    }
    drop(tx);
    let printer = Printer {
        names: &names,
        width,
        json,
        dropped: &dropped,
    };
    printer.print(rx, &stop);
    Ok(super::exit::OK)
}

/// Log events waiting to be printed: a reader slower than the hosts'
/// writers (a terminal, a pipe into `grep`) holds up no follow and grows no
/// queue; lines beyond this are dropped and counted.
const QUEUE: usize = 10_000;

/// Queue one event of a follow; false when the printer is gone. A line that
/// finds the queue full is counted, not waited for; the follow's own news
/// (down, up) always gets through.
fn offer(tx: &SyncSender<TailEvent>, ev: TailEvent, dropped: &AtomicU64) -> bool {
    match tx.try_send(ev) {
        Ok(()) => true,
        Err(TrySendError::Full(TailEvent::Line(_))) => {
            dropped.fetch_add(1, Ordering::Relaxed);
            true
        }
        Err(TrySendError::Full(ev)) => tx.send(ev).is_ok(),
        Err(TrySendError::Disconnected(_)) => false,
    }
}

struct Printer<'a> {
    names: &'a [String],
    width: usize,
    json: bool,
    dropped: &'a [AtomicU64],
}

impl Printer<'_> {
    /// Print what the follows send until they all end, or stdout closes:
    /// what waits is written in one go and flushed once, then what was
    /// dropped meanwhile is said.
    fn print(&self, rx: Receiver<TailEvent>, stop: &CancelToken) {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        while let Ok(first) = rx.recv() {
            let mut written = self.event(&mut out, first);
            while written.is_ok()
                && let Ok(ev) = rx.try_recv()
            {
                written = self.event(&mut out, ev);
            }
            let written = written
                .and_then(|()| self.say_dropped(&mut out))
                .and_then(|()| out.flush());
            // stdout closed (piped into `head`): stop quietly.
            if written.is_err() {
                stop.cancel();
                return;
            }
        }
    }

    fn event(&self, out: &mut impl Write, ev: TailEvent) -> std::io::Result<()> {
        match ev {
            TailEvent::Line(l) if self.json => writeln!(
                out,
                "{}",
                super::json::object(
                    "log",
                    serde_json::json!({
                        "host": self.names[l.host],
                        "received": crate::engine::rfc3339(l.received),
                        "error": l.error,
                        "line": l.text,
                    })
                )
            ),
            TailEvent::Line(l) => {
                let width = self.width;
                writeln!(out, "{:<width$} | {}", self.names[l.host], l.text)
            }
            TailEvent::Down {
                host,
                reason,
                retry_in,
            } => {
                eprintln!(
                    "{}: {reason}; retrying in {}",
                    self.names[host],
                    crate::engine::human_duration(retry_in)
                );
                Ok(())
            }
            TailEvent::Up { .. } => Ok(()),
        }
    }

    /// `web-3: 12,408 lines dropped` on stderr (and a `dropped` object in
    /// JSON) for each host that lost lines since the last time.
    fn say_dropped(&self, out: &mut impl Write) -> std::io::Result<()> {
        for (host, count) in self.dropped.iter().enumerate() {
            let n = count.swap(0, Ordering::Relaxed);
            if n == 0 {
                continue;
            }
            let name = &self.names[host];
            if self.json {
                let body = serde_json::json!({ "host": name, "lines": n });
                writeln!(out, "{}", super::json::object("dropped", body))?;
            }
            eprintln!(
                "{name}: {} lines dropped: the output did not keep up",
                crate::model::fit::grouped(n)
            );
        }
        Ok(())
    }
}
