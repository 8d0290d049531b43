//! Headless progress: one line per host and step, on stderr.

use std::io::Write;

use super::json::Mode;
use crate::engine::canary::Verdict;
use crate::engine::{Control, Event, EventSink, Step, StepStatus};

pub struct Progress {
    env: String,
    hosts: Vec<String>,
    width: usize,
    /// The kind of the last analysis verdict printed: a pause analyses every
    /// few seconds, a log needs a line only when the verdict changes.
    last_verdict: Option<std::mem::Discriminant<Verdict>>,
    /// `lock ok` lines held back until the locks are all taken: a change
    /// refused because one host is locked prints that host's refusal, not
    /// an `ok` for every other host first (nor their unlocks).
    locked: Vec<String>,
    /// A lock was refused: the unlocks that follow undo the others.
    lock_refused: bool,
}

impl Progress {
    pub fn new() -> Self {
        Progress {
            env: String::new(),
            hosts: Vec::new(),
            width: 8,
            last_verdict: None,
            locked: Vec::new(),
            lock_refused: false,
        }
    }

    /// What to print for `event`, if anything: the locks taken print once
    /// the change goes past them, and not at all when one was refused.
    pub fn line(&mut self, event: &Event) -> Option<String> {
        let text = self.describe(event);
        match event {
            Event::ChangeStarted { .. } => {
                self.locked.clear();
                self.lock_refused = false;
            }
            Event::HostStep {
                step: Step::Lock,
                status: StepStatus::Done { .. },
                ..
            } if !self.lock_refused => {
                self.locked.extend(text);
                return None;
            }
            Event::HostStep {
                step: Step::Lock,
                status: StepStatus::Failed { .. },
                ..
            } => {
                self.lock_refused = true;
                return text;
            }
            Event::HostStep {
                step: Step::Unlock | Step::Lock,
                ..
            } if self.lock_refused => return None,
            Event::HostStep {
                status: StepStatus::Started,
                ..
            } => return text,
            Event::ChangeFinished { .. } if self.lock_refused => {
                self.locked.clear();
                return text;
            }
            _ => {}
        }
        // Past the locks: they were all taken, or the change goes on without
        // the one refused (a host left out).
        self.lock_refused = false;
        if self.locked.is_empty() {
            return text;
        }
        let mut lines = std::mem::take(&mut self.locked);
        lines.extend(text);
        Some(lines.join("\n"))
    }

    fn describe(&mut self, event: &Event) -> Option<String> {
        match event {
            Event::ChangeStarted {
                env,
                kind,
                release,
                hosts,
                change,
            } => {
                self.env = env.clone();
                self.hosts = hosts.clone();
                self.width = hosts.iter().map(|h| h.len()).max().unwrap_or(8).max(8);
                Some(format!(
                    "{} {}{} on {} host{} (change {change})",
                    kind.as_str(),
                    release
                        .as_ref()
                        .map(|r| format!("{r} to "))
                        .unwrap_or_default(),
                    env,
                    hosts.len(),
                    if hosts.len() == 1 { "" } else { "s" }
                ))
            }
            Event::Planned(plan) => Some(format!(
                "plan: {} host{} to change in {} batch{} ({})",
                plan.active().count(),
                if plan.active().count() == 1 { "" } else { "s" },
                plan.batches.len(),
                if plan.batches.len() == 1 { "" } else { "es" },
                plan.strategy
            )),
            Event::BatchStarted { index, of, hosts } if *of > 1 => Some(format!(
                "batch {}/{of}: {}",
                index + 1,
                hosts
                    .iter()
                    .map(|&h| self.name(h))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Event::BatchStarted { .. } => None,
            Event::HostStep { host, step, status } => self.step(*host, *step, status),
            Event::Note { host, message } => Some(match host {
                Some(h) => format!("  {}: {message}", self.name(*h)),
                None => format!("note: {message}"),
            }),
            Event::Paused {
                batch,
                of,
                canary,
                wait,
                why,
            } => Some(self.paused(*batch, *of, canary, *wait, why.as_deref())),
            Event::Analysis { verdict, lines } => {
                let kind = std::mem::discriminant(verdict);
                if self.last_verdict == Some(kind) {
                    return None;
                }
                self.last_verdict = Some(kind);
                let mut out = format!("  {verdict}");
                if !lines.is_empty() {
                    out.push_str("\n  last log lines:\n    ");
                    out.push_str(&lines.join("\n    "));
                }
                Some(out)
            }
            Event::Continued { by, control } => Some(match control {
                Control::Next => format!("continued by {by}"),
                Control::Promote => format!("continued by {by}, through every remaining step"),
                Control::Abort => format!("aborted by {by}: the canary hosts go back"),
            }),
            Event::ChangeFinished { .. } => None,
        }
    }

    fn step(&self, host: usize, step: crate::engine::Step, status: &StepStatus) -> Option<String> {
        let name = self.name(host);
        let w = self.width;
        match status {
            StepStatus::Started => None,
            StepStatus::Done { elapsed, detail } => Some(format!(
                "  {name:<w$}  {:<13} ok      {:>7}{}",
                step.label(),
                crate::engine::human_duration(*elapsed),
                detail
                    .as_ref()
                    .map(|d| format!("  {d}"))
                    .unwrap_or_default()
            )),
            StepStatus::Skipped { why } => Some(format!(
                "  {name:<w$}  {:<13} skipped          {why}",
                step.label()
            )),
            StepStatus::Failed { elapsed, error } => Some(format!(
                "  {name:<w$}  {:<13} FAILED  {:>7}  {}",
                step.label(),
                crate::engine::human_duration(*elapsed),
                error.replace('\n', "\n      ")
            )),
        }
    }

    fn paused(
        &mut self,
        batch: usize,
        of: usize,
        canary: &[usize],
        wait: Option<std::time::Duration>,
        why: Option<&str>,
    ) -> String {
        self.last_verdict = None;
        let hosts: Vec<String> = canary.iter().map(|&h| self.name(h)).collect();
        let head = format!(
            "paused after step {}/{of}, canary {} of {}: {}",
            batch + 1,
            canary.len(),
            self.hosts.len(),
            hosts.join(", ")
        );
        let env = &self.env;
        let waiting = format!(
            "waiting for `shipdeck continue {env}` (or `shipdeck abort {env}`), from any machine"
        );
        match (wait, why) {
            (Some(d), _) => format!("{head}; analysing for {}", crate::engine::human_duration(d)),
            (None, Some(why)) => format!("{head}\n  analysis inconclusive: {why}\n  {waiting}"),
            (None, None) => format!("{head}\n  {waiting}"),
        }
    }

    fn name(&self, i: usize) -> String {
        self.hosts
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("host {i}"))
    }
}

/// Where a headless change's events go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    /// One line per host and step on stderr.
    Text,
    /// Nowhere (`-q`): the report and errors say what matters.
    Quiet,
    /// NDJSON on stdout, one object per event (`--events`).
    Events,
}

impl Out {
    pub fn of(mode: Mode, quiet: bool) -> Out {
        match mode {
            Mode::Events => Out::Events,
            _ if quiet => Out::Quiet,
            _ => Out::Text,
        }
    }
}

/// The engine's sink for `out`, and the thread to join before exiting.
/// NDJSON is written as each event is emitted, on the engine's thread, so
/// the final report printed after the change returns is always last.
pub fn sink(out: Out) -> (EventSink, Option<std::thread::JoinHandle<()>>) {
    match out {
        Out::Quiet => (EventSink::discard(), None),
        Out::Events => {
            let hosts = std::sync::Mutex::new(Vec::<String>::new());
            let sink = EventSink::from_fn(move |ev| {
                let mut hosts = hosts.lock().unwrap_or_else(|p| p.into_inner());
                if let Event::ChangeStarted { hosts: names, .. } = &ev {
                    hosts.clone_from(names);
                }
                super::json::emit(Mode::Events, &super::json::event(&ev, &hosts));
            });
            (sink, None)
        }
        Out::Text => {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            (EventSink::new(tx), Some(spawn_printer(rx)))
        }
    }
}

/// Print events to stderr until the sender side is gone.
fn spawn_printer(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Event>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut p = Progress::new();
        let stderr = std::io::stderr();
        while let Some(ev) = rx.blocking_recv() {
            if let Some(line) = p.line(&ev) {
                let _ = writeln!(stderr.lock(), "{line}");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::engine::{ChangeKind, ChangeOutcome};

    fn started() -> Event {
        Event::ChangeStarted {
            change: "c1".into(),
            env: "production".into(),
            kind: ChangeKind::Rollback,
            release: None,
            hosts: vec!["web-1".into(), "web-2".into(), "web-3".into()],
        }
    }

    fn step(host: usize, step: Step, ok: bool) -> Event {
        Event::HostStep {
            host,
            step,
            status: if ok {
                StepStatus::Done {
                    elapsed: Duration::from_millis(3),
                    detail: None,
                }
            } else {
                StepStatus::Failed {
                    elapsed: Duration::from_millis(3),
                    error: "held by bob@vm2 since 2026-12-02T15:00:00Z (shipdeck lock): hold"
                        .into(),
                }
            },
        }
    }

    fn printed(events: &[Event]) -> String {
        let mut p = Progress::new();
        events
            .iter()
            .filter_map(|e| p.line(e))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn a_refused_lock_prints_the_refusal_not_an_ok_for_every_other_host() {
        let out = printed(&[
            started(),
            step(0, Step::Connect, true),
            step(0, Step::Lock, true),
            step(1, Step::Lock, true),
            step(2, Step::Lock, false),
            step(1, Step::Unlock, true),
            step(0, Step::Unlock, true),
            Event::ChangeFinished {
                change: "c1".into(),
                outcome: ChangeOutcome::Failed,
                summary: "locked".into(),
            },
        ]);
        assert!(out.contains("web-3     lock          FAILED"), "{out}");
        assert!(!out.contains("lock          ok"), "{out}");
        assert!(!out.contains("unlock"), "{out}");
    }

    #[test]
    fn locks_all_taken_print_when_the_change_goes_on() {
        let out = printed(&[
            started(),
            step(0, Step::Lock, true),
            step(1, Step::Lock, true),
            step(2, Step::Lock, true),
            step(0, Step::Switch, true),
        ]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 5, "{out}");
        assert!(
            lines[1..4].iter().all(|l| l.contains("lock          ok")),
            "{out}"
        );
        assert!(lines[4].contains("switch"), "{out}");
    }
}
