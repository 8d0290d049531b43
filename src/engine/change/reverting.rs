//! Reverting: a failed change puts its switched hosts back, and a canary
//! aborts. `rollback` is in `rolling_back`.

use super::*;

/// How a host put back whose history line failed is described.
const UNRECORDED: &str = "its history line could not be written";

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
        let progress = match r {
            Ok(()) => Progress::Reverted(why),
            Err(e) => Progress::Stuck(format!(
                "{why}; putting it back on {} also failed: {e}",
                back.map_or("nothing".into(), |b| b.to_string())
            )),
        };
        self.record_revert(h, i, back, release, progress)
    }

    /// The history of a host this change leaves: the change failed, and
    /// (when it went back) the revert, in one round trip.
    fn record_revert(
        &self,
        h: &HostHandle,
        i: usize,
        back: Option<&ReleaseId>,
        release: &LocalRelease,
        progress: Progress,
    ) -> Progress {
        let id = &release.manifest.id;
        let why = match &progress {
            Progress::Reverted(why) | Progress::Stuck(why) => why.clone(),
            _ => String::new(),
        };
        let layout = self.layout(i);
        let mut lines = vec![host::history_script(
            &layout,
            &self.history_line(
                h,
                Line {
                    action: self.history_action(),
                    release: Some(id),
                    sha256: Some(release.manifest.sha256.as_str()),
                    from: back,
                    outcome: Outcome::Failed,
                    health: HealthVerdict::Failed,
                    message: Some(why.clone()),
                },
            ),
        )];
        if matches!(progress, Progress::Reverted(_)) {
            lines.push(host::history_script(
                &layout,
                &self.history_line(
                    h,
                    Line {
                        action: Action::Revert,
                        release: back,
                        sha256: None,
                        from: Some(id),
                        outcome: Outcome::Success,
                        health: HealthVerdict::NotRun,
                        message: Some(format!("{id} failed: {why}")),
                    },
                ),
            ));
        }
        match (
            progress,
            h.with(|t| host::run_together(t, "recording", &lines)),
        ) {
            // History must say what the host runs: a host put back whose
            // line could not be written keeps its lock and journal, and the
            // next change (or `rollback`) writes what it runs.
            (Progress::Reverted(why), Err(e)) => Progress::Stuck(format!(
                "{why}; put back on {}, but {UNRECORDED}: {e}",
                back.map_or("nothing".into(), |b| b.to_string())
            )),
            (p, _) => p,
        }
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
        self.record_untouched(plan, &progress, release, &why);
        // A host that could not be put back keeps its lock and its journal:
        // the next operator must see what it is in the middle of.
        let (stuck_at, done): (Vec<usize>, Vec<usize>) =
            (0..self.fleet.len()).partition(|&i| matches!(progress[i], Progress::Stuck(_)));
        self.unlock(&done, true);
        if !stuck_at.is_empty() {
            outcome = ChangeOutcome::Failed;
        }
        let summary = self.abort_summary(&progress, &stuck_at, id, &why);
        self.report(plan, &progress, outcome, summary)
    }

    /// Every host the stopped change never switched says so in its history.
    fn record_untouched(
        &self,
        plan: &Plan,
        progress: &[Progress],
        release: &LocalRelease,
        why: &str,
    ) {
        let id = &release.manifest.id;
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
    }

    /// What a stopped change says, naming the hosts it could not put back
    /// or could not record.
    fn abort_summary(
        &self,
        progress: &[Progress],
        stuck_at: &[usize],
        id: &ReleaseId,
        why: &str,
    ) -> String {
        let (unrecorded, stuck): (Vec<usize>, Vec<usize>) = stuck_at
            .iter()
            .partition(|&&i| matches!(&progress[i], Progress::Stuck(e) if e.contains(UNRECORDED)));
        let names = |hosts: &[usize]| {
            hosts
                .iter()
                .map(|&i| self.fleet.hosts[i].host.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let attention = match (stuck.is_empty(), unrecorded.is_empty()) {
            (false, true) => format!("COULD NOT PUT BACK {}", names(&stuck)),
            (true, false) => format!(
                "NOT RECORDED {} (put back, but {UNRECORDED})",
                names(&unrecorded)
            ),
            _ => format!(
                "COULD NOT PUT BACK {}; NOT RECORDED {} (put back, but {UNRECORDED})",
                names(&stuck),
                names(&unrecorded)
            ),
        };
        if stuck_at.is_empty() {
            format!(
                "{} {id} to {} stopped: {why}; every host runs what it ran before",
                self.kind.as_str(),
                self.env.name
            )
        } else {
            format!(
                "{} {id} to {} stopped: {why}; {attention}: check them now; they stay locked with the change's journal, for `shipdeck rollback {env}` (or `resume`) to finish the job",
                self.kind.as_str(),
                self.env.name,
                env = self.env.name
            )
        }
    }
}
