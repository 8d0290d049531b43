//! The change pane's reducer: what the engine's events say of the change in
//! flight (or the last one), host by host, with every host named as the
//! screen names it.

use std::time::SystemTime;

use super::App;
use crate::engine::canary::Verdict;
use crate::engine::{ChangeKind, ChangeOutcome, Control, Event, Step, StepStatus};
use crate::model::ReleaseId;

/// A canary pause, as the engine's `Paused` events tell it.
#[derive(Debug, Clone)]
pub struct PauseView {
    /// The batch just moved, from 0, of `of`.
    pub batch: usize,
    pub of: usize,
    /// Hosts on the new release, by index.
    pub canary: Vec<usize>,
    /// When this pause began: its age is what the pane shows.
    pub since: SystemTime,
    /// When the next step starts by itself; `None`: it waits for the operator.
    pub until: Option<SystemTime>,
    /// Why the analysis could not decide.
    pub why: Option<String>,
    /// What this console already told the change during this pause: one
    /// word per pause, so a second `n` cannot carry over into the next one.
    pub sent: Option<Control>,
}

/// The latest canary analysis of a change.
#[derive(Debug, Clone)]
pub struct AnalysisView {
    /// With the hosts it names as the screen names them.
    pub verdict: Verdict,
    /// On a breach: the last log lines of the host that breached.
    pub lines: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct HostProgress {
    pub name: String,
    pub step: Option<Step>,
    pub state: StepState,
    pub steps_done: usize,
    /// Steps the plan gives this host (connect and lock before, unlock after).
    pub steps_total: usize,
    pub error: Option<String>,
    /// A step failed; stays set while the host is put back.
    pub failed: bool,
    /// The host was put back on what it ran.
    pub reverted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepState {
    Waiting,
    Running,
    Done,
    Skipped,
    Failed,
}

/// The change in flight, or the last one, as the engine's events told it.
#[derive(Debug, Clone)]
pub struct ChangeView {
    /// The engine's change id.
    pub id: String,
    pub env: String,
    pub kind: ChangeKind,
    pub release: Option<ReleaseId>,
    pub started: SystemTime,
    pub hosts: Vec<HostProgress>,
    pub batch: Option<(usize, usize)>,
    pub notes: Vec<String>,
    /// While the canary waits between steps.
    pub pause: Option<PauseView>,
    /// Kept after the change ends, so a breach stays on screen.
    pub analysis: Option<AnalysisView>,
    /// A rollback refused because it crosses a schema migration.
    pub refused: Option<String>,
    /// A canary pause ended in an abort: its hosts are going back.
    pub aborting: bool,
    pub finished: Option<(ChangeOutcome, String, SystemTime)>,
}

impl ChangeView {
    pub fn running(&self) -> bool {
        self.finished.is_none()
    }

    /// The pause of a change still running.
    pub fn paused(&self) -> Option<&PauseView> {
        self.pause.as_ref().filter(|_| self.running())
    }

    /// The change as questions and messages name it: `promote v2 → production`.
    pub fn label(&self) -> String {
        match &self.release {
            Some(r) => format!("{} {r} → {}", self.kind.as_str(), self.env),
            None => format!("{} {}", self.kind.as_str(), self.env),
        }
    }

    /// Host names of `indices`, in order.
    pub fn names(&self, indices: &[usize]) -> Vec<&str> {
        indices
            .iter()
            .filter_map(|&i| self.hosts.get(i).map(|h| h.name.as_str()))
            .collect()
    }

    /// It ended and every host it was to change did.
    pub fn succeeded(&self) -> bool {
        matches!(
            self.finished,
            Some((ChangeOutcome::Succeeded | ChangeOutcome::NothingToDo, _, _))
        ) && self.refused.is_none()
    }
}

/// `text` with `from` replaced by `to` where it stands as a whole name: not
/// inside a longer one (`web-1` in `web-10`, `db` in `dbproxy`).
fn replace_name(text: &str, from: &str, to: &str) -> String {
    let part = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_');
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (i, _) in text.match_indices(from) {
        let before = text[..i].chars().next_back();
        let after = text[i + from.len()..].chars().next();
        if part(before) || part(after) {
            continue;
        }
        out.push_str(&text[last..i]);
        out.push_str(to);
        last = i + from.len();
    }
    out.push_str(&text[last..]);
    out
}

impl App {
    /// `text` with every host named as the screen names it: the engine says
    /// `local:hosts/web-1` where the screen says `web-1`.
    pub fn on_screen(&self, text: &str) -> String {
        let mut names: Vec<(&str, &str)> = self
            .config
            .environments
            .iter()
            .zip(&self.envs)
            .flat_map(|(env, row)| env.hosts.iter().map(|h| h.name.as_str()).zip(&row.hosts))
            .filter(|(engine, screen)| engine != &screen.as_str())
            .map(|(engine, screen)| (engine, screen.as_str()))
            .collect();
        // `local:hosts/web-10` before `local:hosts/web-1`.
        names.sort_by_key(|(engine, _)| std::cmp::Reverse(engine.len()));
        let mut out = text.to_owned();
        for (engine, screen) in names {
            if out.contains(engine) {
                out = replace_name(&out, engine, screen);
            }
        }
        out
    }

    /// A verdict naming its hosts as the screen does.
    fn verdict_on_screen(&self, verdict: Verdict) -> Verdict {
        match verdict {
            Verdict::Pass { summary } => Verdict::Pass {
                summary: self.on_screen(&summary),
            },
            Verdict::Inconclusive { why } => Verdict::Inconclusive {
                why: self.on_screen(&why),
            },
            Verdict::Breach {
                metric,
                value,
                threshold,
                host,
                detail,
            } => Verdict::Breach {
                metric,
                value,
                threshold,
                host: host.map(|h| self.on_screen(&h)),
                detail: self.on_screen(&detail),
            },
        }
    }

    pub(super) fn engine_event(&mut self, ev: Event) {
        match ev {
            Event::ChangeStarted {
                change,
                env,
                kind,
                release,
                hosts,
            } => self.change_started(change, env, kind, release, hosts),
            Event::Planned(plan) => {
                let skips: Vec<Option<String>> = plan
                    .hosts
                    .iter()
                    .map(|hp| hp.skip.as_deref().map(|w| self.on_screen(w)))
                    .collect();
                if let Some(c) = &mut self.change {
                    if c.release.is_none() {
                        c.release = plan.release.clone();
                    }
                    for ((h, hp), skip) in c.hosts.iter_mut().zip(&plan.hosts).zip(skips) {
                        h.steps_total = 3 + hp.prepare.len() + hp.publish.len();
                        if let Some(why) = skip {
                            h.state = StepState::Skipped;
                            h.error = Some(why);
                        }
                    }
                }
            }
            Event::BatchStarted { index, of, .. } => {
                if let Some(c) = &mut self.change {
                    c.batch = Some((index + 1, of));
                }
            }
            Event::HostStep { host, step, status } => self.host_step(host, step, status),
            Event::Note { message, .. } => {
                let message = self.on_screen(&message);
                if let Some(c) = &mut self.change {
                    c.notes.push(message);
                }
            }
            Event::Paused {
                batch,
                of,
                canary,
                wait,
                why,
            } => self.paused_at(batch, of, canary, wait, why),
            Event::Analysis { verdict, lines } => {
                let verdict = self.verdict_on_screen(verdict);
                if let Some(c) = &mut self.change {
                    // A breach ends the pause: the canary is being put back.
                    if matches!(verdict, Verdict::Breach { .. }) {
                        c.pause = None;
                    }
                    c.analysis = Some(AnalysisView { verdict, lines });
                }
            }
            Event::Continued { by, control } => self.continued(&by, control),
            Event::ChangeFinished {
                outcome, summary, ..
            } => {
                let summary = self.on_screen(&summary);
                if let Some(c) = &mut self.change {
                    c.pause = None;
                    c.finished = Some((outcome, summary, self.now));
                }
            }
        }
    }

    /// The pause ended: by whom, and how.
    fn continued(&mut self, by: &str, control: Control) {
        if let Some(c) = &mut self.change
            && let Some(p) = c.pause.take()
        {
            let how = match control {
                Control::Next => "continued",
                Control::Promote => "continued through every remaining step",
                Control::Abort => "ABORTED: the canary hosts go back",
            };
            c.notes
                .push(format!("step {} of {}: {how} by {by}", p.batch + 1, p.of));
            c.aborting = control == Control::Abort;
        }
    }

    fn change_started(
        &mut self,
        id: String,
        env: String,
        kind: ChangeKind,
        release: Option<ReleaseId>,
        hosts: Vec<String>,
    ) {
        self.select_latest = false;
        let names = self
            .envs
            .iter()
            .find(|e| e.name == env)
            .map(|e| e.hosts.clone())
            .unwrap_or(hosts);
        self.change = Some(ChangeView {
            id,
            env,
            kind,
            release,
            started: self.now,
            hosts: names
                .into_iter()
                .map(|name| HostProgress {
                    name,
                    step: None,
                    state: StepState::Waiting,
                    steps_done: 0,
                    steps_total: 3,
                    error: None,
                    failed: false,
                    reverted: false,
                })
                .collect(),
            batch: None,
            notes: Vec::new(),
            pause: None,
            analysis: None,
            refused: None,
            aborting: false,
            finished: None,
        });
    }

    fn host_step(&mut self, host: usize, step: Step, status: StepStatus) {
        let error = match &status {
            StepStatus::Failed { error, .. } => Some(self.on_screen(error)),
            _ => None,
        };
        let Some(h) = self.change.as_mut().and_then(|c| c.hosts.get_mut(host)) else {
            return;
        };
        h.step = Some(step);
        match status {
            StepStatus::Started if !h.failed => h.state = StepState::Running,
            StepStatus::Started => {}
            StepStatus::Done { .. } => {
                h.state = if h.failed {
                    StepState::Failed
                } else {
                    StepState::Done
                };
                h.steps_done += 1;
                if step == Step::Revert {
                    h.reverted = true;
                }
            }
            StepStatus::Skipped { .. } => {}
            StepStatus::Failed { .. } => {
                h.state = StepState::Failed;
                h.failed = true;
                h.error = error;
            }
        }
    }

    fn paused_at(
        &mut self,
        batch: usize,
        of: usize,
        canary: Vec<usize>,
        wait: Option<std::time::Duration>,
        why: Option<String>,
    ) {
        let why = why.map(|w| self.on_screen(&w));
        let now = self.now;
        let Some(c) = &mut self.change else { return };
        // Sent again within one pause (a timed pause the analysis could not
        // decide now waits for the operator): what this console said still
        // stands, and the pause is as old as it was. A new pause starts afresh.
        let same = c.pause.as_ref().filter(|p| p.batch == batch);
        let sent = same.and_then(|p| p.sent);
        let since = same.map_or(now, |p| p.since);
        if same.is_none() {
            c.analysis = None;
        }
        c.pause = Some(PauseView {
            batch,
            of,
            canary,
            since,
            until: wait.map(|w| now + w),
            why,
            sent,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::replace_name;

    #[test]
    fn a_name_is_replaced_only_where_it_stands_whole() {
        assert_eq!(
            replace_name(
                "canary breach on local:hosts/web-1: 12%",
                "local:hosts/web-1",
                "web-1"
            ),
            "canary breach on web-1: 12%"
        );
        assert_eq!(
            replace_name(
                "local:hosts/web-10 and local:hosts/web-1.",
                "local:hosts/web-1",
                "web-1"
            ),
            "local:hosts/web-10 and web-1."
        );
        assert_eq!(
            replace_name("db and dbproxy (db)", "db", "primary"),
            "primary and dbproxy (primary)"
        );
    }
}
