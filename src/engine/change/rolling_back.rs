//! Rolling back: `rollback` takes an environment back to its previous
//! release (or `--to`), and finishes an interrupted rollback; per host one
//! round trip where nothing needs restarting or gating.

use super::*;

impl Run<'_> {
    pub(in crate::engine) fn rollback(
        &self,
        to: Option<&ReleaseId>,
        force: bool,
    ) -> Result<ChangeReport, EngineError> {
        let locked = self.lock_hosts(to)?;
        let states = &locked.states;
        let reachable = locked.reachable();
        if to.is_none()
            && states.iter().all(|s| s.journal.is_none())
            && !locked.taken_over.is_empty()
        {
            return Ok(self.release_dead_locks(&locked, &reachable));
        }
        let names: Vec<String> = self.env.hosts.iter().map(|h| h.name.clone()).collect();
        let plan = self.rollback_plan(&locked, &reachable, &names, to, force)?;
        for (i, why) in &locked.unreachable {
            self.engine.events.note(
                Some(*i),
                format!(
                    "{}: unreachable, left out of the rollback: {why}",
                    names[*i]
                ),
            );
        }
        self.engine.events.emit(Event::Planned(plan.clone()));
        let mut progress = Progress::planned(&plan);
        self.journal_rollback(&plan, &mut progress);
        let left_out = (!locked.unreachable.is_empty()).then(|| {
            format!(
                "left out, unreachable: {}",
                locked
                    .unreachable
                    .iter()
                    .map(|(i, _)| names[*i].as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        });
        let still_locked = self.roll_back_batches(
            &plan,
            &mut progress,
            states,
            &reachable,
            left_out.as_deref(),
        );
        // A host whose rollback could not be recorded keeps its lock and its
        // journal: the next `resume` or `rollback` finishes it and writes
        // what it runs.
        let (kept, unlock): (Vec<usize>, Vec<usize>) = still_locked
            .into_iter()
            .partition(|&i| matches!(progress[i], Progress::Stuck(_)));
        self.unlock(&unlock, true);
        Ok(self.rollback_report(&plan, &progress, &locked.unreachable, &kept))
    }

    /// The rollback's plan, or why it must not run (the locks it took are
    /// released then): hosts that disagree or lack a target, or a schema
    /// migration crossed without `force`.
    fn rollback_plan(
        &self,
        locked: &Locked,
        reachable: &[usize],
        names: &[String],
        to: Option<&ReleaseId>,
        force: bool,
    ) -> Result<Plan, EngineError> {
        let states = &locked.states;
        let plan = match plan_rollback_of(
            &self.env.name,
            names,
            states,
            to,
            &self.engine.config.hooks,
            self.engine.config.health.is_some(),
            &locked.unreachable,
        ) {
            Ok(p) => p,
            Err(refusal) => {
                self.unlock(reachable, false);
                let msg = format!(
                    "rollback of {} refused, nothing was changed: {refusal}",
                    self.env.name
                );
                self.finish_event(ChangeOutcome::Failed, &msg);
                return Err(EngineError::Failed(msg));
            }
        };
        self.note_interrupted(states);
        let crossed = self.migrations_crossed(&plan, states);
        if !crossed.is_empty() {
            if !force {
                self.unlock(reachable, false);
                let msg = format!(
                    "rollback of {} refused, nothing was changed: it crosses the schema migration of {}; the release it goes back to may not run on the migrated schema\n  roll back anyway with `shipdeck rollback {} --force` (in the console: R again)",
                    self.env.name,
                    crossed.join(", "),
                    self.env.name
                );
                self.finish_event(ChangeOutcome::Failed, &msg);
                return Err(EngineError::Migration(msg));
            }
            self.engine.events.note(
                None,
                format!(
                    "rolling back across the schema migration of {} (--force)",
                    crossed.join(", ")
                ),
            );
        }
        Ok(plan)
    }

    /// Say which interrupted change this rollback finishes or undoes.
    fn note_interrupted(&self, states: &[HostState]) {
        let Some(interrupted) = states.iter().find_map(|s| s.journal.as_ref()) else {
            return;
        };
        {
            let what = if interrupted.kind == ChangeKind::Rollback {
                "finishing the interrupted rollback"
            } else {
                "undoing the interrupted change"
            };
            self.engine.events.note(
                None,
                format!(
                    "{what} {} ({} {} by {}): {}",
                    interrupted.change,
                    interrupted.kind.as_str(),
                    interrupted.release,
                    interrupted.operator,
                    if interrupted.kind == ChangeKind::Rollback {
                        "its hosts go on to the release it was going to"
                    } else {
                        "its switched hosts go back to what they ran"
                    }
                ),
            );
        }
    }

    /// Switch every host the plan moves; the hosts whose lock is still held
    /// after (a host rolled back releases its lock with its record).
    fn roll_back_batches(
        &self,
        plan: &Plan,
        progress: &mut [Progress],
        states: &[HostState],
        reachable: &[usize],
        left_out: Option<&str>,
    ) -> Vec<usize> {
        let mut still_locked = reachable.to_vec();
        for batch in &plan.batches {
            let todo: Vec<usize> = batch
                .iter()
                .copied()
                .filter(|&i| progress[i] == Progress::Pending)
                .collect();
            let results = self.fleet.each(&todo, |i, h| {
                self.roll_back_host(h, i, &plan.hosts[i], &states[i], left_out)
            });
            for (&i, (p, unlocked)) in todo.iter().zip(results) {
                progress[i] = p;
                if unlocked {
                    still_locked.retain(|&h| h != i);
                }
            }
        }
        still_locked
    }

    /// Before any host switches, every host the rollback changes keeps its
    /// journal: a rollback killed half-way is finished by the next
    /// `rollback` or `resume`. A host whose journal cannot be written is not
    /// touched, and says why.
    fn journal_rollback(&self, plan: &Plan, progress: &mut [Progress]) {
        let active: Vec<usize> = plan.active().map(|h| h.host).collect();
        let Some(first) = active.first().and_then(|&i| plan.hosts[i].to.clone()) else {
            return;
        };
        self.start_journal(plan, plan.release.as_ref().unwrap_or(&first), "");
        self.set_journalled(&active);
        let written = self.fleet.each(&active, |i, h| {
            h.with(|t| host::run_together(t, "writing the journal", &[self.journal_script(i)]))
        });
        for (&i, r) in active.iter().zip(written) {
            if let Err(e) = r {
                progress[i] = Progress::FailedUnchanged(format!(
                    "not rolled back: cannot write the rollback's journal: {e}"
                ));
            }
        }
    }

    /// A dead change's locks, taken over by a rollback with nothing to undo
    /// (it died before it wrote a journal, so it switched nothing): released,
    /// and nothing rolled back.
    fn release_dead_locks(&self, locked: &Locked, reachable: &[usize]) -> ChangeReport {
        self.unlock(reachable, false);
        let dead: std::collections::BTreeSet<String> =
            locked.taken_over.iter().map(LockOwner::describe).collect();
        let summary = format!(
            "released the lock of an interrupted change on {} ({}): it stopped before it switched anything, so nothing was rolled back",
            self.env.name,
            dead.into_iter().collect::<Vec<_>>().join("; ")
        );
        self.plain_report(ChangeOutcome::NothingToDo, summary)
    }

    /// The hosts a failed rollback leaves locked, for `resume` to finish.
    fn kept_text(&self, names: &[&str], kept: &[usize]) -> String {
        if kept.is_empty() {
            return String::new();
        }
        format!(
            "\n  {} stay{} locked with the rollback's journal: `shipdeck resume {}` finishes it",
            kept.iter()
                .map(|&i| names[i])
                .collect::<Vec<_>>()
                .join(", "),
            if kept.len() == 1 { "s" } else { "" },
            self.env.name
        )
    }

    fn rollback_report(
        &self,
        plan: &Plan,
        progress: &[Progress],
        unreachable: &[(usize, String)],
        kept: &[usize],
    ) -> ChangeReport {
        let names: Vec<&str> = plan.hosts.iter().map(|h| h.name.as_str()).collect();
        let failed: Vec<String> = progress
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match p {
                Progress::Stuck(e) | Progress::FailedUnchanged(e) | Progress::Reverted(e) => {
                    Some(format!("{}: {e}", names[i]))
                }
                _ => None,
            })
            .collect();
        let target = plan
            .release
            .as_ref()
            .map_or_else(|| "their previous releases".to_owned(), ToString::to_string);
        let skipped = if unreachable.is_empty() {
            String::new()
        } else {
            format!(
                "; LEFT OUT (unreachable) {}: they still run what they ran, and show as behind until `shipdeck rollback {env} --to {target}` reaches them",
                unreachable
                    .iter()
                    .map(|(i, _)| names[*i])
                    .collect::<Vec<_>>()
                    .join(", "),
                env = self.env.name
            )
        };
        let (outcome, summary) = if plan.is_empty() {
            (
                ChangeOutcome::NothingToDo,
                format!(
                    "every host of {} already runs {target}{skipped}",
                    self.env.name
                ),
            )
        } else if failed.is_empty() {
            let from: Vec<String> = plan
                .active()
                .filter_map(|h| h.from.as_ref().map(ToString::to_string))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            (
                ChangeOutcome::Succeeded,
                format!(
                    "rolled {} back from {} to {target}{skipped}",
                    self.env.name,
                    from.join(", ")
                ),
            )
        } else {
            (
                ChangeOutcome::Failed,
                format!(
                    "rollback of {} to {target} failed on {} host(s):\n  {}{}{skipped}",
                    self.env.name,
                    failed.len(),
                    failed.join("\n  "),
                    self.kept_text(&names, kept)
                ),
            )
        };
        self.report(plan, progress, outcome, summary)
    }

    /// Rolling back a host that fails its gate leaves it on the rollback
    /// target: the release it came from is the one being abandoned. The
    /// history line and the unlock travel with the last step, and with no
    /// restart or gate to wait for, the switch travels with them too: over
    /// many hosts, round trips are what a rollback costs.
    pub(super) fn roll_back_host(
        &self,
        h: &HostHandle,
        i: usize,
        hp: &HostPlan,
        state: &HostState,
        left_out: Option<&str>,
    ) -> (Progress, bool) {
        let Some(target) = hp.to.as_ref() else {
            return (Progress::Skipped, false);
        };
        let cfg = &self.engine.config;
        let layout = self.layout(i);
        let sha = state.verified.get(target).cloned();
        // The hosts a rollback could not reach are named on every line of
        // it, so each host's history says the environment was left split.
        let line = |outcome, health, message: Option<String>| Line {
            action: Action::Rollback,
            release: Some(target),
            sha256: sha.as_deref(),
            from: hp.from.as_ref(),
            outcome,
            health,
            message: match (message, left_out) {
                (Some(m), Some(l)) => Some(format!("{m}; {l}")),
                (m, l) => m.or_else(|| l.map(str::to_owned)),
            },
        };
        let unlock = format!(
            "{}\n{}",
            host::clear_journal_script(&layout),
            self.unlock_script(i)
        );
        let switch = host::switch_script(&layout, Some(target), &self.nonce(i));
        if cfg.hooks.restart.is_none()
            && cfg.health.is_none()
            && cfg.hooks.on_rollback.is_empty()
            && self.traffic() != Traffic::Slots
        {
            return self.roll_back_at_once(h, i, switch, unlock, &line);
        }
        let (record, progress) = self.roll_back_gated(h, i, hp, target, state, switch, &line);
        let mut record = self.history_line(h, record);
        // What history says is what happened to the host: switched to the
        // target and then failed is on the target.
        record.switched = self.has_done(i, Step::Switch) && record.outcome == Outcome::Failed;
        let recorded = self.steps(i, &[Step::Record, Step::Unlock], || {
            h.with(|t| {
                host::run_together(
                    t,
                    "recording and unlocking",
                    &[host::history_script(&layout, &record), unlock],
                )
            })
        });
        match (progress, recorded) {
            (Progress::Switched(_), Err(e)) => (
                Progress::Stuck(format!(
                    "switched, but its history line could not be written: {e}"
                )),
                false,
            ),
            (p, r) => (p, r.is_ok()),
        }
    }

    /// Nothing to restart, gate or run after: switch, record and unlock in
    /// one round trip, so a rollback at 3 a.m. costs one command a host.
    fn roll_back_at_once<'l>(
        &self,
        h: &HostHandle,
        i: usize,
        switch: String,
        unlock: String,
        line: &dyn Fn(Outcome, HealthVerdict, Option<String>) -> Line<'l>,
    ) -> (Progress, bool) {
        let layout = self.layout(i);
        let record = self.history_line(
            h,
            line(Outcome::Success, HealthVerdict::NotConfigured, None),
        );
        let done = self.steps(i, &[Step::Switch, Step::Record, Step::Unlock], || {
            h.with(|t| {
                host::run_together(
                    t,
                    "switching, recording and unlocking",
                    &[switch, host::history_script(&layout, &record), unlock],
                )
            })
        });
        match done {
            Ok(()) => (Progress::Switched(HealthVerdict::NotConfigured), true),
            Err(e) => {
                let _ = self.record(
                    h,
                    i,
                    line(Outcome::Failed, HealthVerdict::NotRun, Some(e.to_string())),
                );
                (Progress::Stuck(e.to_string()), false)
            }
        }
    }

    /// Switch (or move traffic back to the target's slot), restart, gate and
    /// `on_rollback`: the line to record and the host's progress.
    #[allow(clippy::too_many_arguments)]
    fn roll_back_gated<'l>(
        &self,
        h: &HostHandle,
        i: usize,
        hp: &HostPlan,
        target: &ReleaseId,
        state: &HostState,
        switch: String,
        line: &dyn Fn(Outcome, HealthVerdict, Option<String>) -> Line<'l>,
    ) -> (Line<'l>, Progress) {
        let env = self.hook_env(i, target, hp.from.as_ref());
        let result = (|| -> Result<(HealthVerdict, Option<String>), StepError> {
            if self.traffic() == Traffic::Slots {
                return self.roll_back_slot(h, i, hp.from.as_ref(), target, state);
            }
            let scripts = [switch, self.journal_script_with(i, Step::Switch)];
            self.step(i, Step::Switch, || {
                h.with(|t| host::run_together(t, "switching", &scripts))
            })?;
            self.restart(h, i, &env)?;
            Ok((self.health_gate(h, i, &env)?, None))
        })();
        match result {
            Ok((v, said)) => {
                let message = match (said, self.on_rollback(h, i, &env)) {
                    (Some(a), Some(b)) => Some(format!("{a}; {b}")),
                    (a, b) => a.or(b),
                };
                (line(Outcome::Success, v, message), Progress::Switched(v))
            }
            Err(e) => {
                let said = if self.has_done(i, Step::Switch) {
                    format!("on {target}, but: {e}")
                } else {
                    e.to_string()
                };
                (
                    line(Outcome::Failed, HealthVerdict::Failed, Some(said.clone())),
                    Progress::Stuck(said),
                )
            }
        }
    }
}
