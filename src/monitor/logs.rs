//! Log tails: one long-lived follow per host over its own connection (a tail
//! blocks its session, so it never shares one with changes). A host that drops
//! is retried with backoff; nothing else waits for it.

use std::time::{Duration, SystemTime};

use regex::Regex;

pub use crate::host::readings::{LIVE_MARKER, monitor_tail_script, resolved_files, tail_script};
use crate::model::Host;
use crate::transport::CancelToken;
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
/// A console wants a host that came back to show its logs again soon.
const BACKOFF_MAX: Duration = Duration::from_secs(15);

/// Turns a follow's lines into what a monitor shows, once each: after a
/// reconnect the backlog repeats lines already shown, and only the part
/// after the longest overlap with them is new. Without the marker (a
/// `[logs] command`) every line passes.
pub(crate) struct Resync {
    marked: bool,
    live: bool,
    backlog: Vec<LogLine>,
    /// Texts of the newest lines passed on, oldest first.
    recent: std::collections::VecDeque<String>,
    keep: usize,
}

/// A backlog longer than this many times `keep` (many files) loses its oldest lines.
const BACKLOG_FILES_CAP: usize = 8;

impl Resync {
    pub(crate) fn new(marked: bool, keep: usize) -> Self {
        Resync {
            marked,
            live: !marked,
            backlog: Vec::new(),
            recent: std::collections::VecDeque::new(),
            keep: keep.max(1),
        }
    }

    /// The follow (re)started: a backlog comes first.
    pub(crate) fn restarted(&mut self) {
        if self.marked {
            self.live = false;
            self.backlog.clear();
        }
    }

    /// The lines to show for one line read.
    pub(crate) fn line(&mut self, line: LogLine) -> Vec<LogLine> {
        if self.live {
            self.remember(&line.text);
            return vec![line];
        }
        if line.text != LIVE_MARKER {
            if self.backlog.len() >= self.keep * BACKLOG_FILES_CAP {
                self.backlog.remove(0);
            }
            self.backlog.push(line);
            return Vec::new();
        }
        self.live = true;
        let backlog = std::mem::take(&mut self.backlog);
        let seen = overlap(&backlog, &self.recent);
        let fresh: Vec<LogLine> = backlog.into_iter().skip(seen).collect();
        for l in &fresh {
            self.remember(&l.text);
        }
        fresh
    }

    fn remember(&mut self, text: &str) {
        if self.recent.len() == self.keep {
            self.recent.pop_front();
        }
        self.recent.push_back(text.to_owned());
    }
}

/// The largest `j` such that the first `j` backlog lines are the last `j`
/// lines already shown.
fn overlap(backlog: &[LogLine], shown: &std::collections::VecDeque<String>) -> usize {
    let most = backlog.len().min(shown.len());
    (1..=most)
        .rev()
        .find(|&j| {
            backlog[..j]
                .iter()
                .zip(shown.range(shown.len() - j..))
                .all(|(b, s)| b.text == *s)
        })
        .unwrap_or(0)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn config(logs: &str) -> Config {
        let toml = format!(
            "[app]\nname = \"a\"\nartifact = \"dist\"\ndeploy_to = \"/srv/a\"\n\n[logs]\n{logs}\n\n[environments.production]\nhosts = [\"web-1\"]\n"
        );
        Config::parse(std::path::Path::new("/tmp/shipdeck.toml"), &toml).unwrap()
    }

    fn line(text: &str) -> LogLine {
        LogLine {
            host: 0,
            received: SystemTime::UNIX_EPOCH,
            text: text.to_owned(),
            error: false,
        }
    }

    fn texts(lines: Vec<LogLine>) -> Vec<String> {
        lines.into_iter().map(|l| l.text).collect()
    }

    #[test]
    fn relative_files_are_under_deploy_to() {
        let cfg = config("files = [\"shared/log/app.log\", \"/var/log/syslog\"]");
        let script = tail_script(&cfg, "/srv/a/", 10).unwrap();
        assert!(
            script.contains("'/srv/a/shared/log/app.log' '/var/log/syslog'"),
            "{script}"
        );
        let (script, marked) = monitor_tail_script(&cfg, "/srv/a", 10).unwrap();
        assert!(marked);
        assert!(script.contains("'/srv/a/shared/log/app.log'"), "{script}");
        let (_, marked) =
            monitor_tail_script(&config("command = \"journalctl -fu a\""), "/srv/a", 10).unwrap();
        assert!(!marked);
        assert!(monitor_tail_script(&config(""), "/srv/a", 10).is_none());
    }

    /// The real script, run by `sh`: the backlog of each file up to the
    /// marker, then what is written after it, a file created late included,
    /// with nothing lost however soon after the marker it is written.
    #[test]
    fn the_monitor_script_shows_backlog_then_marker_then_every_new_line() {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        use std::process::{Command, Stdio};
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_string_lossy().into_owned();
        std::fs::write(dir.path().join("a.log"), "old a1\nold a2\n").unwrap();
        let cfg = config("files = [\"a.log\", \"b.log\"]");
        let (script, marked) = monitor_tail_script(&cfg, &root, 1).unwrap();
        assert!(marked);
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&script)
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                if line.map(|l| tx.send(l)).is_err() {
                    break;
                }
            }
        });
        let next_line = || rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(next_line(), "old a2");
        assert_eq!(next_line(), LIVE_MARKER);
        let mut a = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("a.log"))
            .unwrap();
        std::io::Write::write_all(&mut a, b"new a3\n").unwrap();
        std::fs::write(dir.path().join("b.log"), "b1\n").unwrap();
        let mut live = vec![next_line(), next_line()];
        // The whole group: the `tail`s run in the background of `sh`.
        crate::signal::group(child.id(), crate::signal::SIGTERM);
        let _ = child.wait();
        live.sort();
        assert_eq!(live, ["b1", "new a3"]);
    }

    #[test]
    fn a_reconnect_shows_only_lines_not_shown_yet() {
        let mut r = Resync::new(true, 3);
        r.restarted();
        assert!(r.line(line("a")).is_empty(), "backlog waits for the marker");
        assert!(r.line(line("b")).is_empty());
        assert_eq!(texts(r.line(line(LIVE_MARKER))), ["a", "b"]);
        assert_eq!(texts(r.line(line("c"))), ["c"]);
        assert_eq!(texts(r.line(line("d"))), ["d"]);
        // Reconnect: the file's last 3 lines are "c d e"; only "e" is new.
        r.restarted();
        for t in ["c", "d", "e"] {
            assert!(r.line(line(t)).is_empty());
        }
        assert_eq!(texts(r.line(line(LIVE_MARKER))), ["e"]);
        // Nothing new while away: nothing shown again.
        r.restarted();
        for t in ["c", "d", "e"] {
            r.line(line(t));
        }
        assert!(r.line(line(LIVE_MARKER)).is_empty());
        // The file was rotated: no overlap, all of it is new.
        r.restarted();
        r.line(line("x"));
        assert_eq!(texts(r.line(line(LIVE_MARKER))), ["x"]);
    }

    #[test]
    fn without_a_marker_every_line_passes() {
        let mut r = Resync::new(false, 3);
        r.restarted();
        assert_eq!(texts(r.line(line("a"))), ["a"]);
        r.restarted();
        assert_eq!(texts(r.line(line("a"))), ["a"]);
    }
}
