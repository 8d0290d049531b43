//! Log tails: one long-lived follow per host over its own connection (a tail
//! blocks its session, so it never shares one with changes). A host that drops
//! is retried with backoff; nothing else waits for it.

use std::time::{Duration, SystemTime};

use regex::Regex;

use crate::config::Config;
use crate::engine::CancelToken;
use crate::host::Layout;
use crate::host::sh::quote;
use crate::model::Host;
use crate::transport::HostHandle;
use crate::transport::ssh::SshSettings;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub host: usize,
    pub received: SystemTime,
    pub text: String,
    /// Matched `logs.error_pattern`.
    pub error: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailEvent {
    Line(LogLine),
    /// The follow stopped (connection lost, command ended); retried after `retry_in`.
    Down {
        host: usize,
        reason: String,
        retry_in: Duration,
    },
    /// The follow (re)started.
    Up {
        host: usize,
    },
}

const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// The script that follows a host's logs, or `None` when `[logs]` names nothing.
pub fn tail_script(cfg: &Config, deploy_to: &str, lines: usize) -> Option<String> {
    let layout = Layout::new(deploy_to);
    if let Some(cmd) = &cfg.logs.command {
        return Some(format!(
            "cd {} 2>/dev/null || cd {} || exit 1\nexec {cmd}",
            quote(&layout.current()),
            quote(deploy_to)
        ));
    }
    if cfg.logs.files.is_empty() {
        return None;
    }
    let files: Vec<String> = cfg.logs.files.iter().map(|f| quote(f)).collect();
    Some(format!(
        "exec tail -q -F -n {lines} -- {} 2>/dev/null",
        files.join(" ")
    ))
}

/// Follow one host until `stop` is cancelled, sending what happens to `send`.
/// `send` returning false (the reader is gone) ends the follow too.
pub fn follow(
    index: usize,
    host: Host,
    settings: SshSettings,
    script: String,
    error_pattern: Option<Regex>,
    stop: CancelToken,
    send: impl Fn(TailEvent) -> bool,
) {
    let handle = HostHandle::new(host, settings);
    let mut backoff = BACKOFF_FIRST;
    while !stop.is_cancelled() {
        let mut reader_gone = false;
        let mut announced = false;
        let result = handle.with(|t| {
            t.stream(
                &script,
                &mut |text| {
                    if !announced {
                        announced = true;
                        if !send(TailEvent::Up { host: index }) {
                            reader_gone = true;
                            return false;
                        }
                    }
                    let error = error_pattern.as_ref().is_some_and(|re| re.is_match(text));
                    let line = LogLine {
                        host: index,
                        received: SystemTime::now(),
                        text: text.to_owned(),
                        error,
                    };
                    if !send(TailEvent::Line(line)) {
                        reader_gone = true;
                    }
                    !reader_gone && !stop.is_cancelled()
                },
                &|| !stop.is_cancelled(),
            )
        });
        if reader_gone || stop.is_cancelled() {
            return;
        }
        if announced {
            backoff = BACKOFF_FIRST;
        }
        let reason = match result {
            Ok(Some(code)) => format!("log follow ended (exit {code})"),
            Ok(None) => "log follow ended".to_owned(),
            Err(e) => {
                handle.disconnect();
                e.to_string()
            }
        };
        if !send(TailEvent::Down {
            host: index,
            reason,
            retry_in: backoff,
        }) {
            return;
        }
        if stop.wait(backoff) {
            return;
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}
