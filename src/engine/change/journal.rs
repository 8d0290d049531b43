//! The change's journal on each host: written as steps finish, read by resume.

use super::*;

impl Run<'_> {
    /// The journal every host of this change keeps, without its own steps.
    /// `release` is the change's (a rollback's: each host's copy names that
    /// host's own target); `sha256` the artifact's, empty for a rollback.
    pub(super) fn start_journal(&self, plan: &Plan, release: &ReleaseId, sha256: &str) {
        let journal = Journal {
            change: self.change.clone(),
            env: self.env.name.clone(),
            kind: self.kind,
            release: release.clone(),
            sha256: sha256.to_owned(),
            operator: self.engine.operator.clone(),
            pid: std::process::id(),
            started: now_rfc3339(),
            strategy: plan.strategy.clone(),
            hosts: plan.hosts.iter().map(|h| h.name.clone()).collect(),
            batches: plan.batches.clone(),
            pauses: Journal::write_pauses(&plan.pauses),
            run_once_on: plan.run_once_on,
            host: String::new(),
            from: None,
            done: Vec::new(),
            updated: String::new(),
            pause: None,
            migration: None,
        };
        *self.journal.lock().unwrap_or_else(|p| p.into_inner()) = Some(journal);
        self.set_routes(plan);
    }

    fn set_routes(&self, plan: &Plan) {
        self.hosts_mut(|hosts| {
            for (h, hp) in hosts.iter_mut().zip(&plan.hosts) {
                h.from = hp.from.clone();
                h.to = hp.to.clone();
            }
        });
    }

    /// One host's record in this change, read or changed under its lock.
    pub(super) fn host<R>(&self, i: usize, f: impl FnOnce(&mut HostRun) -> R) -> R {
        self.hosts_mut(|hosts| f(&mut hosts[i]))
    }

    pub(super) fn hosts_mut<R>(&self, f: impl FnOnce(&mut [HostRun]) -> R) -> R {
        f(&mut self.hosts.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The hosts that keep a journal of this change: those it changes.
    pub(in crate::engine) fn set_journalled(&self, which: &[usize]) {
        self.hosts_mut(|hosts| {
            for (i, h) in hosts.iter_mut().enumerate() {
                h.journalled = which.contains(&i);
            }
        });
    }

    /// A resumed change goes on with the journal and steps it left behind.
    pub(in crate::engine) fn set_journal(
        &self,
        plan: &Plan,
        journal: Journal,
        done: Vec<Vec<Step>>,
    ) {
        if let Some(what) = &journal.migration {
            *self.migration.lock().unwrap_or_else(|p| p.into_inner()) = Some(what.clone());
        }
        *self.journal.lock().unwrap_or_else(|p| p.into_inner()) = Some(journal);
        self.hosts_mut(|hosts| {
            for (h, d) in hosts.iter_mut().zip(done) {
                h.done = d;
            }
        });
        self.set_routes(plan);
    }

    /// Host `i`'s journal as it stands, ready to write in a host's script.
    pub(in crate::engine) fn journal_script(&self, i: usize) -> String {
        let journal = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        let Some(base) = journal.as_ref() else {
            return "true".to_owned();
        };
        let mut j = base.clone();
        j.host = self.fleet.hosts[i].host.name.clone();
        let (from, to, done) = self.host(i, |h| (h.from.clone(), h.to.clone(), h.done.clone()));
        j.from = from;
        if j.kind == ChangeKind::Rollback
            && let Some(to) = to
        {
            j.release = to;
        }
        j.done = done;
        j.updated = now_rfc3339();
        j.pause = self
            .pause_state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        j.migration = self
            .migration
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        host::journal_script(&self.layout(i), &j)
    }

    /// Write every journal of the change again (a pause began or ended, or
    /// its heartbeat); a host that cannot be written to is named.
    pub(in crate::engine) fn write_journals(&self, hosts: &[usize]) {
        self.fleet.each(hosts, |i, h| self.write_journal(h, i));
    }

    pub(in crate::engine) fn live_slot(&self, i: usize) -> Option<crate::model::Slot> {
        self.host(i, |h| h.live_slot)
    }

    /// This host's journal as it will be once `step` is done: written in the
    /// same round trip as the step itself.
    pub(in crate::engine) fn journal_script_with(&self, i: usize, step: Step) -> String {
        self.host(i, |h| h.done.push(step));
        let script = self.journal_script(i);
        self.host(i, |h| h.done.pop());
        script
    }

    /// Write one host's journal now (after a step that cannot carry it).
    pub(in crate::engine) fn write_journal(&self, h: &HostHandle, i: usize) {
        if let Err(e) =
            h.with(|t| host::run_together(t, "writing the journal", &[self.journal_script(i)]))
        {
            self.engine.events.note(
                Some(i),
                format!("{}: cannot write the change's journal: {e}", h.host.name),
            );
        }
    }

    pub(in crate::engine) fn touch_traffic(&self, i: usize) {
        self.host(i, |h| h.traffic = true);
    }

    pub(in crate::engine) fn traffic_touched(&self, i: usize) -> bool {
        self.host(i, |h| h.traffic)
    }

    pub(in crate::engine) fn journalled(&self) -> Vec<usize> {
        self.hosts_mut(|hosts| (0..hosts.len()).filter(|&i| hosts[i].journalled).collect())
    }

    pub(in crate::engine) fn has_done(&self, i: usize, step: Step) -> bool {
        self.host(i, |h| h.done.contains(&step))
    }
}
