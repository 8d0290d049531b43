//! Reverting: a failed change puts its switched hosts back; a canary aborts;
//! `rollback` takes an environment back to its previous release.

use super::*;

impl Run<'_> {
    /// `on_rollback` hooks on a host that went back, in the release it now
    /// runs. A failing hook is reported, and does not undo the rollback.
    pub(super) fn on_rollback(&self, h: &HostHandle, i: usize, env: &HookEnv) -> Option<String> {
        let hooks = &self.engine.config.hooks.on_rollback;
        if hooks.is_empty() {
            return None;
        }
        let dir = self.layout(i).current();
        self.step(i, Step::OnRollback, || {
            self.run_hooks(h, "on_rollback", hooks, &dir, env)
        })
        .err()
        .map(|e| {
            let msg = format!("on_rollback failed: {e}");
            self.engine
                .events
                .note(Some(i), format!("{}: {msg}", h.host.name));
            msg
        })
    }

    /// Put a host back on the release it ran before this change.
    pub(super) fn revert(
        &self,
        h: &HostHandle,
        i: usize,
        hp: &HostPlan,
        release: &LocalRelease,
        why: String,
    ) -> Progress {
        let id = &release.manifest.id;
        let back = hp.from.as_ref();
        let r = self.step(i, Step::Revert, || {
            if self.traffic() == Traffic::Slots {
                // The old slot never stopped: moving traffic back is enough.
                return self.switch_back(h, i, back, id);
            }
            h.with(|t| host::switch(t, &self.layout(i), back, &self.nonce(i)))?;
            if let Some(prev) = back {
                self.run_restart(h, i, &self.hook_env(i, prev, Some(id)))?;
            }
            Ok(())
        });
        let why = match (&r, back) {
            (Ok(()), Some(prev)) => match self.on_rollback(h, i, &self.hook_env(i, prev, Some(id)))
            {
                Some(failed) => format!("{why}; {failed}"),
                None => why,
            },
            _ => why,
        };
        if r.is_ok()
            && let (Some(prev), Some(what)) = (
                back,
                self.migration
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_ref(),
            )
        {
            self.engine.events.note(
                Some(i),
                format!(
                    "{}: back on {prev}, but the schema migration of {id} ({what}) stays applied: {prev} now runs on the migrated schema",
                    h.host.name
                ),
            );
        }
        let (message, progress) = match r {
            Ok(()) => (why.clone(), Progress::Reverted(why.clone())),
            Err(e) => {
                let stuck = format!(
                    "{why}; putting it back on {} also failed: {e}",
                    back.map_or("nothing".into(), |b| b.to_string())
                );
                (stuck.clone(), Progress::Stuck(stuck))
            }
        };
        let _ = self.record(
            h,
            i,
            Line {
                action: self.history_action(),
                release: Some(id),
                sha256: Some(release.manifest.sha256.as_str()),
                from: back,
                outcome: Outcome::Failed,
                health: HealthVerdict::Failed,
                message: Some(message),
            },
        );
        if matches!(progress, Progress::Reverted(_)) {
            let _ = self.record(
                h,
                i,
                Line {
                    action: Action::Revert,
                    release: back,
                    sha256: None,
                    from: Some(id),
                    outcome: Outcome::Success,
                    health: HealthVerdict::NotRun,
                    message: Some(format!("{id} failed: {why}")),
                },
            );
        }
        progress
    }

    /// Stop the change: every switched host goes back, every host gets a
    /// history line saying so, every lock is released.
    pub(super) fn abort(
        &self,
        plan: &Plan,
        mut progress: Vec<Progress>,
        release: &LocalRelease,
        mut outcome: ChangeOutcome,
        why: String,
    ) -> ChangeReport {
        let id = &release.manifest.id;
        self.engine.events.note(
            None,
            format!("stopping: {why}; putting switched hosts back"),
        );
        let switched: Vec<usize> = (0..progress.len())
            .filter(|&i| matches!(progress[i], Progress::Switched(_)))
            .collect();
        let reverted = self.fleet.each(&switched, |i, h| {
            self.revert(
                h,
                i,
                &plan.hosts[i],
                release,
                format!("change stopped: {why}"),
            )
        });
        for (&i, p) in switched.iter().zip(reverted) {
            progress[i] = p;
        }
        let action = self.history_action();
        let untouched: Vec<usize> = (0..progress.len())
            .filter(|&i| {
                matches!(
                    progress[i],
                    Progress::Pending | Progress::FailedUnchanged(_)
                )
            })
            .collect();
        self.fleet.each(&untouched, |i, h| {
            let msg = match &progress[i] {
                Progress::FailedUnchanged(e) => e.clone(),
                // The failing host's log lines belong to its own line, not
                // to every host that merely waited.
                _ => format!("not switched: {}", why.lines().next().unwrap_or_default()),
            };
            let _ = self.record(
                h,
                i,
                Line {
                    action,
                    release: Some(id),
                    sha256: Some(&release.manifest.sha256),
                    from: plan.hosts[i].from.as_ref(),
                    outcome: Outcome::Failed,
                    health: HealthVerdict::NotRun,
                    message: Some(msg),
                },
            );
        });
        // A host that could not be put back keeps its lock and its journal:
        // the next operator must see what it is in the middle of.
        let (stuck_at, done): (Vec<usize>, Vec<usize>) =
            (0..self.fleet.len()).partition(|&i| matches!(progress[i], Progress::Stuck(_)));
        self.unlock(&done, true);
        let stuck: Vec<&str> = stuck_at
            .iter()
            .map(|&i| self.fleet.hosts[i].host.name.as_str())
            .collect();
        let summary = if stuck.is_empty() {
            format!(
                "{} {id} to {} stopped: {why}; every host runs what it ran before",
                self.kind.as_str(),
                self.env.name
            )
        } else {
            outcome = ChangeOutcome::Failed;
            format!(
                "{} {id} to {} stopped: {why}; COULD NOT PUT BACK {}: check them now; they stay locked with the change's journal, for `shipdeck rollback {env}` (or `resume`) to finish the job",
                self.kind.as_str(),
                self.env.name,
                stuck.join(", "),
                env = self.env.name
            )
        };
        self.report(plan, &progress, outcome, summary)
    }

    pub(super) fn rollback(
        &self,
        to: Option<&ReleaseId>,
        force: bool,
    ) -> Result<ChangeReport, EngineError> {
        let cfg = &self.engine.config;
        let states = self.lock_all(to)?;
        let all: Vec<usize> = (0..self.fleet.len()).collect();
        let names: Vec<String> = self.env.hosts.iter().map(|h| h.name.clone()).collect();
        let plan = match plan_rollback(
            &self.env.name,
            &names,
            &states,
            to,
            &cfg.hooks,
            cfg.health.is_some(),
        ) {
            Ok(p) => p,
            Err(refusal) => {
                self.unlock(&all, false);
                let msg = format!(
                    "rollback of {} refused, nothing was changed: {refusal}",
                    self.env.name
                );
                self.finish_event(ChangeOutcome::Failed, &msg);
                return Err(EngineError::Failed(msg));
            }
        };
        if let Some(interrupted) = states.iter().find_map(|s| s.journal.as_ref()) {
            self.engine.events.note(
                None,
                format!(
                    "undoing the interrupted change {} ({} {} by {}): its switched hosts go back to what they ran",
                    interrupted.change,
                    interrupted.kind.as_str(),
                    interrupted.release,
                    interrupted.operator
                ),
            );
        }
        let crossed = self.migrations_crossed(&plan, &states);
        if !crossed.is_empty() {
            if !force {
                self.unlock(&all, false);
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
        self.engine.events.emit(Event::Planned(plan.clone()));
        let mut progress = Progress::planned(&plan);
        let mut still_locked = all.clone();
        for batch in &plan.batches {
            let results = self.fleet.each(batch, |i, h| {
                self.roll_back_host(h, i, &plan.hosts[i], &states[i])
            });
            for (&i, (p, unlocked)) in batch.iter().zip(results) {
                progress[i] = p;
                if unlocked {
                    still_locked.retain(|&h| h != i);
                }
            }
        }
        self.unlock(&still_locked, true);
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
        let (outcome, summary) = if plan.is_empty() {
            (
                ChangeOutcome::NothingToDo,
                format!("every host of {} already runs {target}", self.env.name),
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
                    "rolled {} back from {} to {target}",
                    self.env.name,
                    from.join(", ")
                ),
            )
        } else {
            (
                ChangeOutcome::Failed,
                format!(
                    "rollback of {} to {target} failed on {} host(s):\n  {}",
                    self.env.name,
                    failed.len(),
                    failed.join("\n  ")
                ),
            )
        };
        Ok(self.report(&plan, &progress, outcome, summary))
    }

    /// Rolling back a host that fails its gate leaves it on the rollback
    /// target: the release it came from is the one being abandoned.
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
    ) -> (Progress, bool) {
        let Some(target) = hp.to.as_ref() else {
            return (Progress::Skipped, false);
        };
        let cfg = &self.engine.config;
        let layout = self.layout(i);
        let env = self.hook_env(i, target, hp.from.as_ref());
        let sha = state.verified.get(target).cloned();
        let line = |outcome, health, message| Line {
            action: Action::Rollback,
            release: Some(target),
            sha256: sha.as_deref(),
            from: hp.from.as_ref(),
            outcome,
            health,
            message,
        };
        let unlock = format!(
            "{}\n{}",
            host::clear_journal_script(&layout),
            self.unlock_script(i)
        );
        let switch = host::switch_script(&layout, Some(target), &self.nonce(i));
        let blue_green = self.traffic() == Traffic::Slots;
        if cfg.hooks.restart.is_none()
            && cfg.health.is_none()
            && cfg.hooks.on_rollback.is_empty()
            && !blue_green
        {
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
            return match done {
                Ok(()) => (Progress::Switched(HealthVerdict::NotConfigured), true),
                Err(e) => {
                    let _ = self.record(
                        h,
                        i,
                        line(Outcome::Failed, HealthVerdict::NotRun, Some(e.to_string())),
                    );
                    (Progress::Stuck(e.to_string()), false)
                }
            };
        }
        let result = (|| -> Result<(HealthVerdict, Option<String>), StepError> {
            if blue_green {
                return self.roll_back_slot(h, i, hp.from.as_ref(), target, state);
            }
            self.step(i, Step::Switch, || {
                h.with(|t| host::switch(t, &layout, Some(target), &self.nonce(i)))
            })?;
            self.restart(h, i, &env)?;
            Ok((self.health_gate(h, i, &env)?, None))
        })();
        let message = match &result {
            Ok((_, said)) => {
                let failed = self.on_rollback(h, i, &env);
                match (said.clone(), failed) {
                    (Some(a), Some(b)) => Some(format!("{a}; {b}")),
                    (a, b) => a.or(b),
                }
            }
            Err(_) => None,
        };
        let result = result.map(|(v, _)| v);
        let (record, progress) = match result {
            Ok(v) => (line(Outcome::Success, v, message), Progress::Switched(v)),
            Err(e) => (
                line(Outcome::Failed, HealthVerdict::Failed, Some(e.to_string())),
                Progress::Stuck(e.to_string()),
            ),
        };
        let record = self.history_line(h, record);
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
}
