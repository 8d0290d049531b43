//! Publishing a host: switch, restart, health gate and `after_switch`, then the
//! history line.

use super::*;

impl Run<'_> {
    pub(in crate::engine) fn record(
        &self,
        h: &HostHandle,
        i: usize,
        line: Line<'_>,
    ) -> Result<(), StepError> {
        let record = self.history_line(h, line);
        h.with(|t| host::append_history(t, &self.layout(i), &record))
    }

    pub(super) fn history_line(&self, h: &HostHandle, line: Line<'_>) -> HistoryRecord {
        HistoryRecord {
            time: crate::model::time::now_rfc3339_ms(),
            operator: self.engine.operator.clone(),
            change: self.change.clone(),
            action: line.action,
            env: self.env.name.clone(),
            host: h.host.name.clone(),
            release: line.release.cloned(),
            sha256: line.sha256.map(str::to_owned),
            from: line.from.cloned(),
            outcome: line.outcome,
            switched: false,
            health: line.health,
            duration_ms: self.started.elapsed().as_millis() as u64,
            message: match (line.message, &self.override_note) {
                (Some(m), Some(note)) => Some(format!("{m}; {note}")),
                (m, note) => m.or_else(|| note.clone()),
            },
            // A migration is the schema's, not the host's: it stays applied
            // when the change that ran it failed or was rolled back.
            migration: matches!(line.action, Action::Deploy | Action::Promote)
                .then(|| {
                    self.migration
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clone()
                })
                .flatten(),
        }
    }

    pub(super) fn history_action(&self) -> Action {
        match self.kind {
            ChangeKind::Deploy => Action::Deploy,
            ChangeKind::Promote => Action::Promote,
            ChangeKind::Rollback => Action::Rollback,
            ChangeKind::Finish => Action::Finish,
        }
    }

    /// Switch one host, restart, gate, hooks, record. A failure after the
    /// switch puts the host straight back on what it ran.
    pub(super) fn publish(
        &self,
        h: &HostHandle,
        i: usize,
        hp: &HostPlan,
        release: &LocalRelease,
    ) -> Progress {
        if self.cancel.is_cancelled() {
            return Progress::FailedUnchanged("cancelled".into());
        }
        let env = self.release_env(i, &release.manifest.id, hp.from.as_ref());
        let done = self.switch_and_gate(h, i, hp, &release.manifest.id, &env);
        match done.and_then(|verdict| self.record_switch(h, i, hp, release, verdict)) {
            Ok(verdict) => Progress::Switched(verdict),
            // Without its history line the host's state is not what history
            // says; put it back rather than leave it unexplained.
            Err(e) => self.revert(h, i, hp, release, e.to_string()),
        }
    }

    /// Switch (a symlink, or traffic to the started idle slot), restart,
    /// gate and `after_switch`. A resumed change does not redo what its
    /// journal says was done; each step writes the journal in (or right
    /// after) its round trip.
    fn switch_and_gate(
        &self,
        h: &HostHandle,
        i: usize,
        hp: &HostPlan,
        id: &ReleaseId,
        env: &HookEnv,
    ) -> Result<HealthVerdict, StepError> {
        let cfg = &self.engine.config;
        let interrupted = "done before the change was interrupted";
        let verdict = if self.traffic() == Traffic::Slots {
            if self.has_done(i, Step::Switch) {
                // Its gate passed before traffic moved.
                self.skip(i, Step::Switch, interrupted);
                if cfg.health.is_some() {
                    HealthVerdict::Passed
                } else {
                    HealthVerdict::NotConfigured
                }
            } else {
                self.switch_slot(h, i, id, hp.from.as_ref(), self.live_slot(i))?
            }
        } else {
            if self.has_done(i, Step::Switch) {
                self.skip(i, Step::Switch, interrupted);
            } else {
                let scripts = [
                    host::switch_script(&self.layout(i), Some(id), &self.nonce(i)),
                    self.journal_script_with(i, Step::Switch),
                ];
                self.step(i, Step::Switch, || {
                    h.with(|t| host::run_together(t, "switching", &scripts))
                })?;
            }
            if self.has_done(i, Step::Restart) {
                self.skip(i, Step::Restart, interrupted);
            } else if cfg.hooks.restart.is_some() {
                self.restart(h, i, env)?;
                self.write_journal(h, i);
            }
            self.health_gate(h, i, env)?
        };
        if !cfg.hooks.after_switch.is_empty() {
            let dir = self.layout(i).current();
            self.step(i, Step::AfterSwitch, || {
                self.run_hooks(h, "after_switch", &cfg.hooks.after_switch, &dir, env)
            })?;
        }
        Ok(verdict)
    }

    /// The success line, written only if `current` points at the release,
    /// and the journal saying Record, in one round trip, the journal last.
    fn record_switch(
        &self,
        h: &HostHandle,
        i: usize,
        hp: &HostPlan,
        release: &LocalRelease,
        verdict: HealthVerdict,
    ) -> Result<HealthVerdict, StepError> {
        let id = &release.manifest.id;
        let record = self.history_line(
            h,
            Line {
                action: self.history_action(),
                release: Some(id),
                sha256: Some(release.manifest.sha256.as_str()),
                from: hp.from.as_ref(),
                outcome: Outcome::Success,
                health: verdict,
                message: None,
            },
        );
        let layout = self.layout(i);
        let scripts = [
            host::current_is_script(&layout, id),
            host::history_script(&layout, &record),
            self.journal_script_with(i, Step::Record),
        ];
        self.step(i, Step::Record, || {
            h.with(|t| host::run_together(t, "recording", &scripts))
        })?;
        Ok(verdict)
    }

    /// The restart hook, as a step of its own.
    pub(super) fn restart(&self, h: &HostHandle, i: usize, env: &HookEnv) -> Result<(), StepError> {
        if self.engine.config.hooks.restart.is_some() {
            self.step(i, Step::Restart, || self.run_restart(h, i, env))?;
        }
        Ok(())
    }

    /// Run the restart hook, if any, in `current`.
    pub(super) fn run_restart(
        &self,
        h: &HostHandle,
        i: usize,
        env: &HookEnv,
    ) -> Result<(), StepError> {
        let cfg = &self.engine.config;
        if let Some(restart) = &cfg.hooks.restart {
            let dir = self.layout(i).current();
            h.with(|t| {
                host::run_command(t, "restart", &dir, restart, env, cfg.ssh.command_timeout)
            })?;
        }
        Ok(())
    }

    pub(super) fn health_gate(
        &self,
        h: &HostHandle,
        i: usize,
        env: &HookEnv,
    ) -> Result<HealthVerdict, StepError> {
        match &self.engine.config.health {
            None => Ok(HealthVerdict::NotConfigured),
            // What the host serves is what `current` runs: the gate checks
            // that, not the release folder it was unpacked into.
            Some(health) => self.step(i, Step::Health, || {
                let dir = self.layout(i).current();
                health::gate(h, health, &h.host, env, &dir, &self.cancel)
            }),
        }
    }
}

impl Run<'_> {
    /// Switch batch by batch from `first_batch`, pausing where the plan
    /// says. `Ok` is how many hosts failed within `max_failures`; `Err` is
    /// why the change stops and goes back.
    pub(super) fn publish_batches(
        &self,
        plan: &Plan,
        progress: &mut [Progress],
        release: &LocalRelease,
        first_batch: usize,
    ) -> Result<usize, (ChangeOutcome, String)> {
        let mut failures = 0;
        let mut promote_all = false;
        for (b, batch) in plan.batches.iter().enumerate().skip(first_batch) {
            if self.cancel.is_cancelled() {
                return Err((ChangeOutcome::Cancelled, "cancelled by the operator".into()));
            }
            let todo: Vec<usize> = batch
                .iter()
                .copied()
                .filter(|&i| progress[i] == Progress::Pending)
                .collect();
            if !todo.is_empty() {
                self.engine.events.emit(Event::BatchStarted {
                    index: b,
                    of: plan.batches.len(),
                    hosts: todo.clone(),
                });
            }
            let results = self
                .fleet
                .each(&todo, |i, h| self.publish(h, i, &plan.hosts[i], release));
            for (&i, p) in todo.iter().zip(results) {
                if !matches!(p, Progress::Switched(_)) {
                    failures += 1;
                }
                progress[i] = p;
            }
            if failures > plan.max_failures {
                let why = format!(
                    "{failures} host{} failed (max_failures = {})",
                    if failures == 1 { "" } else { "s" },
                    plan.max_failures
                );
                return Err((ChangeOutcome::RolledBack, why));
            }
            if promote_all {
                continue;
            }
            for pause in plan.pauses.get(b).into_iter().flatten() {
                match self.pause(plan, progress, b, *pause) {
                    PauseEnd::Next => {}
                    PauseEnd::Promote => {
                        promote_all = true;
                        break;
                    }
                    PauseEnd::Stop(outcome, why) => return Err((outcome, why)),
                }
            }
        }
        Ok(failures)
    }
}
