//! Finishing: cleanup of old releases, unlocking, and the report and events a
//! change ends with.

use super::*;

impl Run<'_> {
    /// Release the locks; with `end`, the change is over and its journal goes
    /// in the same round trip.
    pub(in crate::engine) fn unlock(&self, hosts: &[usize], end: bool) {
        self.fleet.each(hosts, |i, h| {
            let layout = self.layout(i);
            let mut scripts = vec![self.unlock_script(i)];
            if end {
                scripts.insert(0, host::clear_journal_script(&layout));
            }
            if let Err(e) = self.step(i, Step::Unlock, || h.with(|t| host::run_together(t, "releasing the lock", &scripts))) {
                self.engine.events.note(
                    Some(i),
                    format!("{}: the lock is still held ({e}); release it with `shipdeck unlock {} --force --reason \"why\"`", h.host.name, self.env.name),
                );
            }
        });
    }

    pub(super) fn unlock_script(&self, i: usize) -> String {
        host::unlock_script(&self.layout(i), Some(&host::change_marker(&self.change)))
    }

    pub(super) fn finish_event(&self, outcome: ChangeOutcome, summary: &str) {
        let word = match outcome {
            ChangeOutcome::Succeeded | ChangeOutcome::NothingToDo
                if self.kind == ChangeKind::Rollback =>
            {
                "rolled-back"
            }
            ChangeOutcome::Succeeded | ChangeOutcome::NothingToDo => "succeeded",
            ChangeOutcome::RolledBack => "rolled-back",
            ChangeOutcome::Cancelled => "cancelled",
            ChangeOutcome::Failed => "failed",
        };
        self.notify("finished", word, summary);
        // The process may exit right after: let the team hear of it first.
        for h in self
            .notices
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            let _ = h.join();
        }
        self.engine.events.emit(Event::ChangeFinished {
            change: self.change.clone(),
            outcome,
            summary: summary.to_owned(),
        });
    }

    pub(super) fn cleanup(&self, h: &HostHandle, i: usize) -> Result<(), StepError> {
        let layout = self.layout(i);
        let keep = self.engine.config.app.keep_releases;
        h.with(|t| {
            let state = host::probe(t, &layout)?;
            let current = state.current();
            let previous = previous_release(&state.history, current.as_ref());
            let remove = releases_to_remove(
                &state.releases,
                &state.history,
                current.as_ref(),
                previous.as_ref(),
                keep,
            );
            host::remove_releases(t, &layout, &remove)
        })
    }

    /// A report for a change without a plan of switches (finish).
    pub(in crate::engine) fn plain_report(
        &self,
        outcome: ChangeOutcome,
        summary: String,
    ) -> ChangeReport {
        self.finish_event(outcome, &summary);
        ChangeReport {
            change: self.change.clone(),
            env: self.env.name.clone(),
            kind: self.kind,
            release: None,
            outcome,
            summary,
            duration_ms: self.started.elapsed().as_millis() as u64,
            hosts: Vec::new(),
        }
    }

    pub(super) fn report(
        &self,
        plan: &Plan,
        progress: &[Progress],
        outcome: ChangeOutcome,
        summary: String,
    ) -> ChangeReport {
        let hosts = plan
            .hosts
            .iter()
            .zip(progress)
            .map(|(hp, p)| {
                let (result, error) = match p {
                    Progress::Pending => ("unchanged", None),
                    Progress::Skipped => ("skipped", hp.skip.clone()),
                    Progress::Switched(_) => ("switched", None),
                    Progress::FailedUnchanged(e) => ("failed", Some(e.clone())),
                    Progress::Reverted(e) => ("reverted", Some(e.clone())),
                    Progress::Stuck(e) => ("needs attention", Some(e.clone())),
                };
                HostReport {
                    host: hp.name.clone(),
                    from: hp.from.clone(),
                    to: hp.to.clone(),
                    result: result.to_owned(),
                    error,
                }
            })
            .collect();
        self.finish_event(outcome, &summary);
        ChangeReport {
            change: self.change.clone(),
            env: self.env.name.clone(),
            kind: self.kind,
            release: plan.release.clone(),
            outcome,
            summary,
            duration_ms: self.started.elapsed().as_millis() as u64,
            hosts,
        }
    }
}

impl Run<'_> {
    /// Every batch is through: clean up old releases on the hosts that
    /// switched, release every lock with its journal, and report.
    pub(super) fn finish_deploy(
        &self,
        plan: &Plan,
        progress: &[Progress],
        release: &LocalRelease,
        failures: usize,
    ) -> ChangeReport {
        let id = &release.manifest.id;
        let switched: Vec<usize> = (0..progress.len())
            .filter(|&i| matches!(progress[i], Progress::Switched(_)))
            .collect();
        self.fleet.each(&switched, |i, h| {
            let _ = self.step(i, Step::Cleanup, || self.cleanup(h, i));
        });
        let all: Vec<usize> = (0..self.fleet.len()).collect();
        self.unlock(&all, true);
        let n = switched.len();
        let (outcome, summary) = if failures == 0 {
            let s = if n == 1 { "" } else { "s" };
            (
                ChangeOutcome::Succeeded,
                format!(
                    "{} {id} to {}: {n} host{s} switched",
                    self.kind.as_str(),
                    self.env.name
                ),
            )
        } else {
            (
                ChangeOutcome::Failed,
                format!(
                    "{} {id} to {}: {n} switched, {failures} failed and went back (within max_failures = {})",
                    self.kind.as_str(),
                    self.env.name,
                    plan.max_failures
                ),
            )
        };
        self.report(plan, progress, outcome, summary)
    }
}
