//! Updating every host before any host switches: upload, unpack, shared links,
//! `before_switch` and `run_once` hooks, and the migration marks they leave.

use super::*;

impl Run<'_> {
    pub(super) fn mark_migration(&self, what: String) {
        let mut m = self.migration.lock().unwrap_or_else(|p| p.into_inner());
        if m.is_none() {
            self.engine.events.note(
                None,
                format!(
                    "{} carries a schema migration ({what})",
                    self.release
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default()
                ),
            );
            *m = Some(what);
        }
    }

    pub(super) fn prepare(
        &self,
        h: &HostHandle,
        i: usize,
        hp: &HostPlan,
        release: &LocalRelease,
    ) -> Result<(), StepError> {
        let cfg = &self.engine.config;
        let id = &release.manifest.id;
        let layout = self.layout(i);
        for step in &hp.prepare {
            if self.cancel.is_cancelled() {
                return Err(StepError::Refused("cancelled".into()));
            }
            if self.has_done(i, *step) {
                self.skip(i, *step, "done before the change was interrupted");
                continue;
            }
            match step {
                Step::Upload => self.step(i, Step::Upload, || {
                    h.with(|t| {
                        host::upload_and_unpack(
                            t,
                            &layout,
                            &release.tarball,
                            id,
                            &release.manifest.sha256,
                            &self.nonce(i),
                            cfg.ssh.command_timeout,
                        )
                    })
                })?,
                Step::Link => self.step(i, Step::Link, || {
                    h.with(|t| host::link_shared(t, &layout, id, &cfg.app.shared))
                })?,
                Step::BeforeSwitch => {
                    let env = self.release_env(i, id, hp.from.as_ref());
                    self.step(i, Step::BeforeSwitch, || {
                        self.run_hooks(
                            h,
                            "before_switch",
                            &cfg.hooks.before_switch,
                            &env.release_dir,
                            &env,
                        )
                    })?
                }
                // run_once runs after every host is prepared, on its own.
                _ => {}
            }
        }
        if !hp.prepare.contains(&Step::Upload) {
            self.skip(
                i,
                Step::Upload,
                "release already on the host, sha256 verified",
            );
        }
        h.with(|t| host::run_together(t, "writing the journal", &[self.journal_script(i)]))
    }

    /// Run a hook list in order on one host; the first failure stops it.
    pub(super) fn run_hooks(
        &self,
        h: &HostHandle,
        kind: &str,
        hooks: &[String],
        dir: &str,
        env: &HookEnv,
    ) -> Result<(), StepError> {
        let timeout = self.engine.config.ssh.command_timeout;
        h.with(|t| {
            for hook in hooks {
                let out = host::run_command(
                    t,
                    &format!("{kind} hook `{hook}`"),
                    dir,
                    hook,
                    env,
                    timeout,
                )?;
                if let Some(what) = migration_mark(&out.stdout) {
                    self.mark_migration(format!("{kind} hook `{hook}`: {what}"));
                }
            }
            Ok(())
        })
    }

    /// Releases with a schema migration this rollback would go back across,
    /// over every host it switches.
    pub(super) fn migrations_crossed(&self, plan: &Plan, states: &[HostState]) -> Vec<String> {
        let mut crossed: Vec<String> = Vec::new();
        for hp in plan.active() {
            let Some(target) = &hp.to else { continue };
            for (id, what) in migrations_crossed(&states[hp.host].history, target) {
                let s = format!("{id} ({what})");
                if !crossed.contains(&s) {
                    crossed.push(s);
                }
            }
        }
        crossed
    }
}

impl Run<'_> {
    /// Prepare every host before any host switches, then `run_once` on its
    /// host: a failed upload or hook leaves the whole environment on its old
    /// release. `Some` is why the change stops before switching.
    pub(super) fn update_hosts(
        &self,
        plan: &Plan,
        progress: &mut [Progress],
        release: &LocalRelease,
    ) -> Option<(ChangeOutcome, String)> {
        let pending: Vec<usize> = (0..progress.len())
            .filter(|&i| progress[i] == Progress::Pending)
            .collect();
        let prepared = self
            .fleet
            .each(&pending, |i, h| self.prepare(h, i, &plan.hosts[i], release));
        for (&i, r) in pending.iter().zip(prepared) {
            if let Err(e) = r {
                progress[i] = Progress::FailedUnchanged(e.to_string());
            }
        }
        if let Some(i) = plan.run_once_on
            && progress[i] == Progress::Pending
            && !self.has_done(i, Step::RunOnce)
            && !self.cancel.is_cancelled()
            && let Err(e) = self.run_once(plan, i, &release.manifest.id)
        {
            progress[i] = Progress::FailedUnchanged(e.to_string());
        }
        if progress
            .iter()
            .any(|p| matches!(p, Progress::FailedUnchanged(_)))
        {
            Some((
                ChangeOutcome::RolledBack,
                "a host failed before switching".to_owned(),
            ))
        } else if self.cancel.is_cancelled() {
            Some((
                ChangeOutcome::Cancelled,
                "cancelled before switching".to_owned(),
            ))
        } else {
            None
        }
    }

    /// The `run_once` hooks on their one host, the migration mark they carry,
    /// and the journal saying they ran (so a resumed change skips them).
    fn run_once(&self, plan: &Plan, i: usize, id: &ReleaseId) -> Result<(), StepError> {
        let cfg = &self.engine.config;
        let h = &self.fleet.hosts[i];
        let env = self.release_env(i, id, plan.hosts[i].from.as_ref());
        self.step(i, Step::RunOnce, || {
            self.run_hooks(h, "run_once", &cfg.hooks.run_once, &env.release_dir, &env)
        })?;
        if cfg.hooks.run_once_migrates {
            self.mark_migration(format!("run_once: {}", cfg.hooks.run_once.join("; ")));
        }
        let _ = h.with(|t| host::run_together(t, "writing the journal", &[self.journal_script(i)]));
        Ok(())
    }
}
