//! `shipdeck logs`: every host's log follow, merged, prefixed with the host.

use std::io::Write;

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
    let (tx, rx) = std::sync::mpsc::channel::<TailEvent>();
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
        let tx = tx.clone();
        let (settings, pattern, stop) = (
            settings.clone(),
            cfg.logs.error_pattern.clone(),
            stop.clone(),
        );
        std::thread::spawn(move || {
            follow_host(i, host, settings, script, pattern, stop, |ev| {
                tx.send(ev).is_ok()
            })
        });
    }
    drop(tx);
    print_lines(rx, &names, width, json, &stop);
    Ok(super::exit::OK)
}

/// Print what the follows send until they all end, or stdout closes.
fn print_lines(
    rx: std::sync::mpsc::Receiver<TailEvent>,
    names: &[String],
    width: usize,
    json: bool,
    stop: &CancelToken,
) {
    let mut out = std::io::stdout().lock();
    for ev in rx {
        let written = match ev {
            TailEvent::Line(l) if json => writeln!(
                out,
                "{}",
                super::json::object(
                    "log",
                    serde_json::json!({
                        "host": names[l.host],
                        "received": crate::engine::rfc3339(l.received),
                        "error": l.error,
                        "line": l.text,
                    })
                )
            ),
            TailEvent::Line(l) => writeln!(out, "{:<width$} | {}", names[l.host], l.text),
            TailEvent::Down {
                host,
                reason,
                retry_in,
            } => {
                eprintln!(
                    "{}: {reason}; retrying in {}",
                    names[host],
                    crate::engine::human_duration(retry_in)
                );
                Ok(())
            }
            TailEvent::Up { .. } => Ok(()),
        };
        // stdout closed (piped into `head`): stop quietly.
        if written.is_err() {
            stop.cancel();
            return;
        }
    }
}
