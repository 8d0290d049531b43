//! A canary pause: watch the canary hosts against the hosts still on the old
//! release until the pause's time is up or the operator moves the change on,
//! and stop the change at the first breach.

use std::time::{Duration, Instant, SystemTime};

use super::Control;
use super::analysis::{Watch, tick_all};
use super::canary::{PauseKind, Thresholds, Verdict, analyse};
use super::change::{Progress, Run};
use super::events::{ChangeOutcome, Event};
use super::journal::{HEARTBEAT, PauseState};
use super::plan::Plan;
use super::{now_rfc3339, rfc3339};
use crate::host::{self, Layout};

/// Judging earlier than this reads noise: a minute's rate from two seconds.
const MIN_JUDGE: Duration = Duration::from_secs(10);
const DEFAULT_TICK: Duration = Duration::from_secs(2);

pub(super) enum PauseEnd {
    Next,
    Promote,
    /// Stop the change and put the canary hosts back.
    Stop(ChangeOutcome, String),
}

/// A word left on the hosts by `shipdeck continue`/`abort`, for one pause
/// of one change: a word that arrives late never ends the pause after it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Signal {
    pub change: String,
    /// The batch the pause follows, from 0.
    pub pause: usize,
    pub control: Control,
    pub by: String,
}

impl Run<'_> {
    pub(super) fn pause(
        &self,
        plan: &Plan,
        progress: &[Progress],
        batch: usize,
        kind: PauseKind,
    ) -> PauseEnd {
        let cfg = &self.engine.config;
        let thresholds = self.env.strategy.thresholds();
        let (canary, baseline) = groups(progress);
        // The verdict names a host as the operator reads it (its configured
        // `name`, else its address).
        let watched: Vec<(usize, String)> = canary
            .iter()
            .chain(&baseline)
            .map(|&i| (i, self.env.hosts[i].shown().to_owned()))
            .collect();
        let tick = cfg.health.as_ref().map_or(DEFAULT_TICK, |h| h.interval);
        let started = Instant::now();
        let deadline = kind.deadline(started);
        let of = plan.batches.len();
        let mut waiting = deadline.is_none();
        let journalled = self.journalled();
        let notice = Notice {
            batch,
            of,
            since: now_rfc3339(),
            canary: &canary,
            journalled: &journalled,
        };
        let paused = |wait, why| self.announce(&notice, wait, why);
        self.engine.controls.begin(batch);
        paused(deadline.map(|d| d - started), None);
        if waiting {
            self.notify("paused", "", &self.waiting_text(batch, of));
        }
        let mut heartbeat = Instant::now();
        let mut watch = Watch::new(cfg, &watched);
        let release = self.release.clone().expect("a deploy has a release");
        // Each host is probed as the release it runs: the baseline its old one.
        let env_for = |i: usize| match (canary.contains(&i), plan.hosts[i].from.as_ref()) {
            (false, Some(from)) => self.hook_env(i, from, None),
            _ => self.hook_env(i, &release, plan.hosts[i].from.as_ref()),
        };
        // The first tick only sets where each log starts.
        let mut word = tick_all(cfg, self.fleet, &mut watch, env_for);
        loop {
            if let Some(end) = self.told(word.take(), batch, tick) {
                return end;
            }
            if heartbeat.elapsed() >= HEARTBEAT {
                heartbeat = Instant::now();
                self.write_journals(&journalled);
            }
            word = tick_all(cfg, self.fleet, &mut watch, env_for);
            let due = deadline.is_some_and(|d| Instant::now() >= d);
            if watch.elapsed() < MIN_JUDGE && !due {
                continue;
            }
            let (verdict, lines) = self.judge(&watch, &canary, &baseline, &thresholds);
            match verdict {
                Verdict::Breach { .. } => return self.breached(&verdict, &lines),
                Verdict::Pass { .. } if due && !waiting => {
                    return self.continued(Control::Next, "its timer".to_owned());
                }
                Verdict::Inconclusive { why } if due && !waiting => {
                    waiting = true;
                    paused(None, Some(why.clone()));
                    self.notify(
                        "paused",
                        "",
                        &format!("{}: {why}", self.waiting_text(batch, of)),
                    );
                }
                _ => {}
            }
        }
    }

    /// What ends the pause from outside, waiting up to `tick` for it: a
    /// word left on a host, the console's word, or a cancel.
    fn told(&self, word: Option<String>, batch: usize, tick: Duration) -> Option<PauseEnd> {
        if let Some(end) = self.take_word(word, batch) {
            return Some(end);
        }
        if let Some(c) = self.engine.controls.wait(tick) {
            return Some(self.continued(c, "the console".to_owned()));
        }
        if self.cancel.is_cancelled() {
            self.end_pause();
            return Some(PauseEnd::Stop(
                ChangeOutcome::Cancelled,
                "cancelled by the operator".into(),
            ));
        }
        None
    }

    /// Tell this process's console, and every machine through the hosts'
    /// journals, what the pause is now.
    fn announce(&self, n: &Notice<'_>, wait: Option<Duration>, why: Option<String>) {
        *self.pause_state.lock().unwrap_or_else(|p| p.into_inner()) = Some(PauseState {
            batch: n.batch,
            of: n.of,
            since: n.since.clone(),
            until: wait.map(|w| rfc3339(SystemTime::now() + w)),
            why: why.clone(),
        });
        self.write_journals(n.journalled);
        self.engine.events.emit(Event::Paused {
            batch: n.batch,
            of: n.of,
            canary: n.canary.to_vec(),
            wait,
            why,
        })
    }

    /// The canary against the baseline now, told to every view with the
    /// breaching host's last log lines.
    fn judge(
        &self,
        watch: &Watch,
        canary: &[usize],
        baseline: &[usize],
        thresholds: &Thresholds,
    ) -> (Verdict, Vec<String>) {
        let verdict = analyse(&watch.group(canary), &watch.group(baseline), thresholds);
        let lines = match &verdict {
            Verdict::Breach { host: Some(h), .. } => watch.last_lines(h),
            _ => Vec::new(),
        };
        self.engine.events.emit(Event::Analysis {
            verdict: verdict.clone(),
            lines: lines.clone(),
        });
        (verdict, lines)
    }

    /// A breach ends the pause and rolls the canary back; the reason keeps
    /// the last log lines of the host that breached.
    fn breached(&self, verdict: &Verdict, lines: &[String]) -> PauseEnd {
        let mut why = verdict.to_string();
        if !lines.is_empty() {
            why.push_str("\n  last log lines:\n    ");
            why.push_str(&lines.join("\n    "));
        }
        self.notify("breach", "rolled-back", &verdict.to_string());
        self.end_pause();
        PauseEnd::Stop(ChangeOutcome::RolledBack, why)
    }

    fn waiting_text(&self, batch: usize, of: usize) -> String {
        format!(
            "{} is paused after step {} of {of}; `shipdeck continue {env}` goes on, `shipdeck abort {env}` rolls the canary back",
            self.env.name,
            batch + 1,
            env = self.env.name
        )
    }

    /// A word from the hosts counts only for this pause of this change.
    fn take_word(&self, word: Option<String>, batch: usize) -> Option<PauseEnd> {
        let signal: Signal = serde_json::from_str(&word?).ok()?;
        if signal.change != self.change || signal.pause != batch {
            return None;
        }
        Some(self.continued(signal.control, signal.by))
    }

    fn continued(&self, c: Control, by: String) -> PauseEnd {
        self.end_pause();
        self.engine.events.emit(Event::Continued {
            by: by.clone(),
            control: c,
        });
        match c {
            Control::Abort => PauseEnd::Stop(
                ChangeOutcome::Cancelled,
                format!("aborted by {by} during a canary pause"),
            ),
            Control::Next => PauseEnd::Next,
            Control::Promote => PauseEnd::Promote,
        }
    }

    /// The pause is over: no word is taken for it any more, the journals no
    /// longer say paused, and a word left on the hosts is read once: gone.
    fn end_pause(&self) {
        self.engine.controls.end();
        *self.pause_state.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let all: Vec<usize> = (0..self.fleet.len()).collect();
        let journalled = self.journalled();
        let cleared = self.fleet.each(&all, |i, h| {
            let clear = host::signal_script(&Layout::new(&h.host.deploy_to), None);
            let journal = if journalled.contains(&i) {
                self.journal_script(i)
            } else {
                "true".to_owned()
            };
            h.with(|t| host::run_together(t, "ending the pause", &[clear, journal]))
        });
        for (i, r) in cleared.into_iter().enumerate() {
            if let Err(e) = r {
                // Harmless for this change (a word names its pause), but an
                // operator reading the host should know why it is there.
                self.engine.events.note(
                    Some(i),
                    format!(
                        "{}: cannot clear the pause's word or journal: {e}",
                        self.fleet.hosts[i].host.name
                    ),
                );
            }
        }
    }
}

/// What every announcement of one pause repeats.
struct Notice<'a> {
    batch: usize,
    of: usize,
    since: String,
    canary: &'a [usize],
    journalled: &'a [usize],
}

/// The canary (hosts switched so far) and the baseline (hosts still on the
/// old release) of a pause.
fn groups(progress: &[Progress]) -> (Vec<usize>, Vec<usize>) {
    let canary = (0..progress.len())
        .filter(|&i| matches!(progress[i], Progress::Switched(_)))
        .collect();
    let baseline = (0..progress.len())
        .filter(|&i| progress[i] == Progress::Pending)
        .collect();
    (canary, baseline)
}
