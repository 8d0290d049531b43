//! Where log follows leave their lines until the console takes them, once a
//! frame. It holds at most `keep` lines a host (the console's own ring holds
//! no more, so an older one could never be shown) and counts what it had to
//! drop, so a flood costs bounded memory and one wake-up a frame, never a
//! queue that grows faster than it is read.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::{HostKey, LogLine, MonitorEvent};

/// One host's waiting lines, each with its arrival number across all hosts.
#[derive(Default)]
struct Waiting {
    lines: std::collections::VecDeque<(u64, LogLine)>,
    dropped: u64,
}

pub struct LogInbox {
    hosts: Vec<Vec<Mutex<Waiting>>>,
    keep: usize,
    arrivals: AtomicU64,
    /// Set by the first line after a take: the reader has been woken once.
    woken: AtomicBool,
}

impl LogInbox {
    /// `hosts_per_env[e]` hosts in environment `e`, `keep` lines each.
    pub fn new(hosts_per_env: &[usize], keep: usize) -> Self {
        LogInbox {
            hosts: hosts_per_env
                .iter()
                .map(|n| (0..*n).map(|_| Mutex::default()).collect())
                .collect(),
            keep: keep.max(1),
            arrivals: AtomicU64::new(0),
            woken: AtomicBool::new(false),
        }
    }

    /// Leave a line; true when the reader should be woken (the first line
    /// since it last took them). Lines of hosts not in the inbox are dropped.
    pub fn put(&self, key: HostKey, line: LogLine) -> bool {
        let Some(slot) = self.hosts.get(key.env).and_then(|h| h.get(key.host)) else {
            return false;
        };
        let seq = self.arrivals.fetch_add(1, Ordering::Relaxed);
        {
            let mut w = slot.lock().unwrap_or_else(|p| p.into_inner());
            if w.lines.len() >= self.keep {
                w.lines.pop_front();
                w.dropped += 1;
            }
            w.lines.push_back((seq, line));
        }
        !self.woken.swap(true, Ordering::AcqRel)
    }

    /// Everything waiting, as the events a [`super::MonitorState`] applies:
    /// the lines of every host in the order they arrived, then a
    /// [`MonitorEvent::LogsDropped`] for each host that lost lines.
    pub fn take(&self) -> Vec<MonitorEvent> {
        self.woken.store(false, Ordering::Release);
        let mut lines = Vec::new();
        let mut dropped = Vec::new();
        for (e, hosts) in self.hosts.iter().enumerate() {
            for (h, slot) in hosts.iter().enumerate() {
                let key = HostKey { env: e, host: h };
                let mut w = slot.lock().unwrap_or_else(|p| p.into_inner());
                lines.extend(w.lines.drain(..).map(|(seq, line)| (seq, key, line)));
                if w.dropped > 0 {
                    dropped.push(MonitorEvent::LogsDropped {
                        key,
                        count: std::mem::take(&mut w.dropped),
                    });
                }
            }
        }
        lines.sort_unstable_by_key(|(seq, _, _)| *seq);
        lines
            .into_iter()
            .map(|(_, key, line)| MonitorEvent::Log { key, line })
            .chain(dropped)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn line(host: usize, text: &str) -> LogLine {
        LogLine {
            host,
            received: SystemTime::UNIX_EPOCH,
            text: text.to_owned(),
            error: false,
        }
    }

    const A: HostKey = HostKey { env: 0, host: 0 };
    const B: HostKey = HostKey { env: 0, host: 1 };

    fn texts(events: &[MonitorEvent]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                MonitorEvent::Log { key, line } => format!("{}:{}", key.host, line.text),
                MonitorEvent::LogsDropped { key, count } => {
                    format!("{} dropped {count}", key.host)
                }
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn lines_come_out_in_arrival_order_across_hosts() {
        let inbox = LogInbox::new(&[2], 10);
        assert!(
            inbox.put(A, line(0, "a1")),
            "the first line wakes the reader"
        );
        assert!(
            !inbox.put(B, line(1, "b1")),
            "one wake until the reader takes"
        );
        inbox.put(A, line(0, "a2"));
        assert_eq!(texts(&inbox.take()), ["0:a1", "1:b1", "0:a2"]);
        assert!(inbox.take().is_empty());
        assert!(
            inbox.put(B, line(1, "b2")),
            "taken: the next line wakes again"
        );
    }

    #[test]
    fn a_flood_keeps_the_newest_lines_and_counts_the_rest() {
        let inbox = LogInbox::new(&[2], 3);
        for i in 0..10_000 {
            inbox.put(A, line(0, &format!("a{i}")));
        }
        inbox.put(B, line(1, "b"));
        assert_eq!(
            texts(&inbox.take()),
            ["0:a9997", "0:a9998", "0:a9999", "1:b", "0 dropped 9997"]
        );
        inbox.put(A, line(0, "after"));
        assert_eq!(texts(&inbox.take()), ["0:after"], "the count starts again");
    }

    #[test]
    fn lines_of_unknown_hosts_are_ignored() {
        let inbox = LogInbox::new(&[1], 3);
        assert!(!inbox.put(HostKey { env: 3, host: 0 }, line(0, "x")));
        assert!(inbox.take().is_empty());
    }
}
