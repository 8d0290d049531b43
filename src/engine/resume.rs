//! Changes that outlive their operator's process: `resume` continues an
//! interrupted change from its journals, and `continue`/`abort` leave a word
//! on the hosts for a paused change run from any machine.

use super::Control;
use super::change::{Progress, Run};
use super::events::{Event, Step};
use super::journal::{Journal, Liveness, liveness, lock_is_dead};
use super::pause::Signal;
use super::plan::{HostPlan, Plan};
use super::strategy::{publish_steps, rollout};
use super::{ChangeOptions, ChangeReport, Engine, EngineError};
use crate::host::{self, HostState, Layout, LockState};
use crate::model::{HealthVerdict, ReleaseId};

impl Engine {
    /// Read every host of an environment (the journals a change left there,
    /// what each runs), or say which could not be read.
    pub(super) fn read_hosts(&self, env_name: &str) -> Result<Vec<HostState>, EngineError> {
        let (_, fleet) = self.environment(env_name)?;
        let results = fleet.all(|_, h| h.with(|t| host::probe(t, &Layout::new(&h.host.deploy_to))));
        let mut states = Vec::new();
        let mut errors = Vec::new();
        for (h, r) in fleet.hosts.iter().zip(results) {
            match r {
                Ok(s) => states.push(s),
                Err(e) => errors.push(format!("{}: {e}", h.host.name)),
            }
        }
        if errors.is_empty() {
            Ok(states)
        } else {
            Err(EngineError::Failed(format!(
                "cannot read every host of {env_name}\n  {}",
                errors.join("\n  ")
            )))
        }
    }

    /// The journal an interrupted change left, if it can be resumed from
    /// here: one change, the same hosts, and its process gone.
    fn resumable(
        &self,
        env_name: &str,
        hosts: &[crate::model::Host],
        states: &[HostState],
        journals: &[Option<Journal>],
    ) -> Result<Journal, EngineError> {
        let Some(first) = journals.iter().flatten().next().cloned() else {
            let dead = states.iter().find_map(|s| match &s.lock {
                Some(LockState::Owned(o)) if lock_is_dead(o, &self.operator) => Some(o),
                _ => None,
            });
            return Err(EngineError::Failed(match dead {
                Some(o) => format!(
                    "{env_name} has no journal to resume from: the change holding its lock ({}) was interrupted before it switched anything\n  `shipdeck rollback {env_name}` releases that lock and rolls nothing back",
                    o.describe()
                ),
                None => format!("{env_name} has no interrupted change to resume"),
            }));
        };
        if let Some(other) = journals.iter().flatten().find(|j| j.change != first.change) {
            return Err(EngineError::Failed(format!(
                "the hosts of {env_name} hold journals of two changes ({} and {}); roll back with `shipdeck rollback {env_name} --to RELEASE`",
                first.change, other.change
            )));
        }
        let names: Vec<String> = hosts.iter().map(|h| h.name.clone()).collect();
        if first.hosts != names {
            return Err(EngineError::Failed(format!(
                "{env_name}'s hosts changed since change {} started ({} then, {} now); roll it back with `shipdeck rollback {env_name}`",
                first.change,
                first.hosts.join(", "),
                names.join(", ")
            )));
        }
        match liveness(&first.operator, first.pid, &self.operator) {
            Liveness::Running => {
                return Err(EngineError::Locked(format!(
                    "change {} ({} {} by {}) is still running as process {}; it cannot be resumed while it runs",
                    first.change,
                    first.kind.as_str(),
                    first.release,
                    first.operator,
                    first.pid
                )));
            }
            Liveness::Elsewhere | Liveness::Interrupted => {}
        }
        Ok(first)
    }

    /// Continue an interrupted change from the host and step it stopped at.
    pub fn resume(
        &self,
        env_name: &str,
        opts: &ChangeOptions,
    ) -> Result<ChangeReport, EngineError> {
        let (env, fleet) = self.environment(env_name)?;
        let states = self.read_hosts(env_name)?;
        let journals: Vec<Option<Journal>> = states.iter().map(|s| s.journal.clone()).collect();
        let first = self.resumable(env_name, &env.hosts, &states, &journals)?;
        if first.kind == super::events::ChangeKind::Rollback {
            // An interrupted rollback goes on to where it was going; it
            // needs no artifact, only the releases already on the hosts.
            let mut run = Run::continuing(
                self,
                env,
                fleet,
                first.kind,
                Some(first.release.clone()),
                first.change.clone(),
            );
            run.allow_take_over();
            run.set_options(opts);
            return run.rollback(None, opts.force);
        }
        let release = self.store.get_verified(&first.release).map_err(|e| {
            EngineError::Usage(format!("cannot resume change {}: {e}", first.change))
        })?;
        if release.manifest.sha256 != first.sha256 {
            return Err(EngineError::Failed(format!(
                "the local {} (sha256 {}) is not the artifact change {} shipped (sha256 {}); roll it back with `shipdeck rollback {env_name}`",
                first.release,
                super::short_sha(&release.manifest.sha256),
                first.change,
                super::short_sha(&first.sha256)
            )));
        }
        let override_note = self.check_window(env, opts)?;
        let mut run = Run::continuing(
            self,
            env,
            fleet,
            first.kind,
            Some(first.release.clone()),
            first.change.clone(),
        );
        run.set_override(override_note);
        run.set_options(opts);
        run.allow_take_over();
        run.resume(&release, first, journals)
    }

    /// Leave a word for the paused change of an environment on its hosts; the
    /// change reads it at its next tick, from whichever machine runs it. The
    /// word names the pause it is for, so it never ends a later one.
    pub fn signal(&self, env_name: &str, control: Control) -> Result<String, EngineError> {
        let (_, fleet) = self.environment(env_name)?;
        let states = self.read_hosts(env_name)?;
        let verb = match control {
            Control::Abort => "abort",
            _ => "continue",
        };
        let Some(j) = states.iter().find_map(|s| s.journal.as_ref()) else {
            return Err(EngineError::Failed(format!(
                "no change is in progress on {env_name}: nothing to {verb}"
            )));
        };
        let what = format!(
            "change {} ({} {} by {})",
            j.change,
            j.kind.as_str(),
            j.release,
            j.operator
        );
        if liveness(&j.operator, j.pid, &self.operator) == Liveness::Interrupted {
            return Err(EngineError::Failed(format!(
                "{what} is interrupted (its process is gone), not paused: `shipdeck resume {env_name}` continues it, `shipdeck rollback {env_name}` undoes it"
            )));
        }
        // Any host's journal may be the one a failed write left behind; the
        // newest pause wins.
        let Some(pause) = states
            .iter()
            .filter_map(|s| s.journal.as_ref())
            .filter(|x| x.change == j.change)
            .filter_map(|x| x.pause.clone())
            .max_by_key(|p| p.batch)
        else {
            return Err(EngineError::Failed(format!(
                "{what} is not paused (it is switching hosts): there is nothing to {verb} until its next pause; the operator running it can cancel it"
            )));
        };
        let word = serde_json::to_string(&Signal {
            change: j.change.clone(),
            pause: pause.batch,
            control,
            by: self.operator.to_string(),
        })
        .map_err(|e| EngineError::Failed(format!("cannot write the word: {e}")))?;
        let written = fleet.all(|_, h| {
            let script = host::signal_script(&Layout::new(&h.host.deploy_to), Some(&word));
            h.with(|t| host::run_together(t, "leaving the word", &[script]))
        });
        let missed: Vec<String> = fleet
            .hosts
            .iter()
            .zip(&written)
            .filter_map(|(h, r)| r.as_ref().err().map(|e| format!("{}: {e}", h.host.name)))
            .collect();
        if missed.len() == written.len() {
            return Err(EngineError::Failed(format!(
                "no host of {env_name} could be reached to leave the word\n  {}",
                missed.join("\n  ")
            )));
        }
        let act = match control {
            Control::Next => "continue to its next step",
            Control::Promote => "continue through every remaining step",
            Control::Abort => "abort and put its canary hosts back",
        };
        let mut said = format!(
            "told {what}, {}, to {act}; it acts on it within one health interval",
            pause.describe()
        );
        if !missed.is_empty() {
            said.push_str(&format!(
                " (the word reached every host but {}; one is enough)",
                missed.join(", ")
            ));
        }
        Ok(said)
    }
}

impl Run<'_> {
    /// The interrupted change's plan again, from its journal: the same
    /// batches and pauses, and what each host still has to prepare.
    fn resumed_plan(
        &self,
        first: &Journal,
        journals: &[Option<Journal>],
        states: &[HostState],
    ) -> Plan {
        let cfg = &self.engine.config;
        let in_plan = |i: usize| first.batches.iter().any(|b| b.contains(&i));
        let hosts: Vec<HostPlan> = states
            .iter()
            .enumerate()
            .map(|(i, state)| {
                let j = journals[i].as_ref();
                let from = j.map_or_else(|| state.current(), |j| j.from.clone());
                let mut prepare = Vec::new();
                if !state.has_verified(&first.release, &first.sha256) {
                    prepare.push(Step::Upload);
                }
                if !cfg.app.shared.is_empty() {
                    prepare.push(Step::Link);
                }
                if !cfg.hooks.before_switch.is_empty() {
                    prepare.push(Step::BeforeSwitch);
                }
                if first.run_once_on == Some(i) {
                    prepare.push(Step::RunOnce);
                }
                HostPlan {
                    host: i,
                    name: first.hosts[i].clone(),
                    from,
                    to: Some(first.release.clone()),
                    skip: (!in_plan(i)).then(|| format!("already ran {}", first.release)),
                    prepare,
                    publish: publish_steps(
                        rollout(&self.env.strategy).traffic(),
                        &cfg.hooks,
                        cfg.health.is_some(),
                        true,
                    ),
                }
            })
            .collect();
        Plan {
            env: self.env.name.clone(),
            kind: first.kind,
            release: Some(first.release.clone()),
            strategy: first.strategy.clone(),
            hosts,
            batches: first.batches.clone(),
            pauses: (0..first.batches.len())
                .map(|b| first.pause_kinds(b))
                .collect(),
            run_once_on: first.run_once_on,
            max_failures: rollout(&self.env.strategy).max_failures(),
        }
    }

    /// The steps each host's journal says it did, less a switch whose effect
    /// is gone.
    fn steps_done(
        &self,
        plan: &Plan,
        first: &Journal,
        journals: &[Option<Journal>],
        states: &[HostState],
    ) -> Vec<Vec<Step>> {
        let mut done: Vec<Vec<Step>> = journals
            .iter()
            .map(|j| j.as_ref().map(|j| j.done.clone()).unwrap_or_default())
            .collect();
        // The host's `current` is the truth: a switch its journal records but
        // whose effect is gone (a revert put the host back, then failed) is
        // done again, never skipped.
        for (i, d) in done.iter_mut().enumerate() {
            if plan.hosts[i].skip.is_some() {
                continue;
            }
            let current = states[i].current();
            if forget_lost_switch(d, current.as_ref(), &first.release) {
                self.engine.events.note(
                    Some(i),
                    format!(
                        "{}: its journal says it switched to {}, but current points at {}: switching it again",
                        first.hosts[i],
                        first.release,
                        current.map_or_else(|| "nothing".to_owned(), |c| c.to_string())
                    ),
                );
            }
        }
        done
    }

    pub(super) fn resume(
        &self,
        release: &crate::store::LocalRelease,
        first: Journal,
        journals: Vec<Option<Journal>>,
    ) -> Result<ChangeReport, EngineError> {
        self.engine.events.note(
            None,
            format!(
                "resuming change {} ({} {} by {}, started {})",
                first.change,
                first.kind.as_str(),
                first.release,
                first.operator,
                first.started
            ),
        );
        let states = self.lock_all(Some(&first.release))?;
        let plan = self.resumed_plan(&first, &journals, &states);
        self.engine.events.emit(Event::Planned(plan.clone()));
        let done = self.steps_done(&plan, &first, &journals, &states);
        let progress: Vec<Progress> = (0..plan.hosts.len())
            .map(|i| {
                if plan.hosts[i].skip.is_some() {
                    Progress::Skipped
                } else if done[i].contains(&Step::Record) {
                    Progress::Switched(HealthVerdict::Passed)
                } else {
                    Progress::Pending
                }
            })
            .collect();
        let began: Vec<bool> = done.iter().map(|d| began_publishing(d)).collect();
        let first_batch = resume_point(&plan.batches, &progress, &began);
        for (i, d) in done.iter().enumerate() {
            if d.contains(&Step::Switch) {
                self.touch_traffic(i);
            }
        }
        let mut base = first;
        base.pid = std::process::id();
        base.operator = self.engine.operator.clone();
        self.set_journal(&plan, base, done);
        if first_batch >= plan.batches.len() {
            self.engine
                .events
                .note(None, "every host had switched; finishing the change");
        }
        self.execute(&plan, progress, release, first_batch)
    }
}

/// The steps a host's switch consists of, from starting its slot to its
/// history line: undone together when a revert took the switch back.
const PUBLISH_STEPS: [Step; 6] = [
    Step::StartSlot,
    Step::Switch,
    Step::Restart,
    Step::Health,
    Step::AfterSwitch,
    Step::Record,
];

/// Drop the switch from a host's journalled steps when `current` does not
/// point at the change's release; says whether it did.
fn forget_lost_switch(
    done: &mut Vec<Step>,
    current: Option<&ReleaseId>,
    release: &ReleaseId,
) -> bool {
    // A slot started but not yet taking traffic is not a switch.
    let switched = done
        .iter()
        .any(|s| PUBLISH_STEPS.contains(s) && *s != Step::StartSlot);
    if current == Some(release) || !switched {
        return false;
    }
    done.retain(|s| !PUBLISH_STEPS.contains(s));
    true
}

/// Whether a host had begun its switch (its slot started, or `current` or
/// its traffic moved) when the change was interrupted.
fn began_publishing(done: &[Step]) -> bool {
    done.iter().any(|s| {
        matches!(
            s,
            Step::Switch | Step::StartSlot | Step::Restart | Step::Record
        )
    })
}

/// The batch to go on from: the first with a host still to switch; or, when
/// that batch has not started, the one before it, whose pauses may not have
/// run to their end.
fn resume_point(batches: &[Vec<usize>], progress: &[Progress], began: &[bool]) -> usize {
    let pending = |b: &Vec<usize>| b.iter().any(|&i| progress[i] == Progress::Pending);
    let started = |b: &Vec<usize>| {
        b.iter()
            .any(|&i| began[i] || progress[i] != Progress::Pending)
    };
    let Some(k) = batches.iter().position(pending) else {
        return batches.len();
    };
    if k > 0 && !started(&batches[k]) {
        k - 1
    } else {
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(switched: &[bool]) -> Vec<Progress> {
        switched
            .iter()
            .map(|&s| {
                if s {
                    Progress::Switched(HealthVerdict::Passed)
                } else {
                    Progress::Pending
                }
            })
            .collect()
    }

    const NONE: [bool; 4] = [false; 4];

    #[test]
    fn resumes_in_the_batch_that_was_switching() {
        let batches = vec![vec![0], vec![1, 2], vec![3]];
        assert_eq!(
            resume_point(&batches, &p(&[false, false, false, false]), &NONE),
            0
        );
        assert_eq!(
            resume_point(&batches, &p(&[true, true, false, false]), &NONE),
            1
        );
        // web-2 had switched, not recorded: its batch had begun, the pause
        // before it is over.
        let began = [true, false, true, false];
        assert_eq!(
            resume_point(&batches, &p(&[true, false, false, false]), &began),
            1
        );
    }

    #[test]
    fn resumes_the_pauses_of_a_batch_that_had_switched() {
        let batches = vec![vec![0], vec![1, 2], vec![3]];
        assert_eq!(
            resume_point(&batches, &p(&[true, false, false, false]), &NONE),
            0
        );
        assert_eq!(
            resume_point(&batches, &p(&[true, true, true, false]), &NONE),
            1
        );
        assert_eq!(
            resume_point(&batches, &p(&[true, true, true, true]), &NONE),
            3
        );
    }

    #[test]
    fn a_switch_that_current_does_not_show_is_done_again() {
        let v2 = ReleaseId::parse("v2").unwrap();
        let v1 = ReleaseId::parse("v1").unwrap();
        let mut done = vec![Step::Upload, Step::Switch, Step::Restart];
        assert!(forget_lost_switch(&mut done, Some(&v1), &v2));
        assert_eq!(done, vec![Step::Upload]);
        let mut done = vec![Step::Upload, Step::Switch, Step::Record];
        assert!(!forget_lost_switch(&mut done, Some(&v2), &v2));
        assert_eq!(done.len(), 3);
        let mut prepared = vec![Step::Upload];
        assert!(!forget_lost_switch(&mut prepared, None, &v2));
    }

    #[test]
    fn a_host_began_publishing_once_its_switch_or_slot_started() {
        assert!(!began_publishing(&[Step::Upload, Step::Link]));
        assert!(began_publishing(&[Step::Upload, Step::Switch]));
        assert!(began_publishing(&[Step::Upload, Step::StartSlot]));
    }
}
