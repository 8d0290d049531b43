//! Starting a change: the deploy window and promotion gates, and the locks of
//! every host (all or nothing), read with each host's state.

use super::*;

impl Engine {
    /// Refuse a change outside the environment's window or inside a freeze,
    /// unless overridden with a reason; the override is what history keeps.
    pub(in crate::engine) fn check_window(
        &self,
        env: &Environment,
        opts: &ChangeOptions,
    ) -> Result<Option<String>, EngineError> {
        let Err(refusal) = window::check(&env.rules, std::time::SystemTime::now()) else {
            return Ok(None);
        };
        match opts.override_reason.as_deref().map(str::trim) {
            Some(reason) if !reason.is_empty() => {
                let note = format!(
                    "window overridden by {}: {refusal}; reason: {reason}",
                    self.operator
                );
                self.events.note(None, note.clone());
                Ok(Some(note))
            }
            _ => Err(EngineError::Window(format!(
                "{} may not be changed now: {refusal}\n  to change it anyway, add --override --reason \"why\" (the history keeps both)",
                env.name
            ))),
        }
    }

    /// Refuse unless every host of `required` passed its gate with exactly this artifact.
    pub fn check_promotion_gate(
        &self,
        release: &LocalRelease,
        required: &str,
    ) -> Result<(), EngineError> {
        let (_, fleet) = self.environment(required)?;
        let id = &release.manifest.id;
        let sha = &release.manifest.sha256;
        let results = fleet.all(|_, h| h.with(|t| host::probe(t, &Layout::new(&h.host.deploy_to))));
        let mut missing = Vec::new();
        for (h, r) in fleet.hosts.iter().zip(results) {
            if let Ok(state) = &r {
                for w in state.history_warnings(
                    &h.host.name,
                    &format!("the check that {id} passed {required} reads"),
                ) {
                    self.events.note(None, w);
                }
            }
            match r {
                Ok(state) if passed_gate(&state.history, id, sha) => {}
                Ok(state) if !state.corrupt_history.is_empty() => missing.push(format!(
                    "{} (its history has corrupt lines: {}; a record there may be the one missing)",
                    h.host.name,
                    state
                        .corrupt_history
                        .iter()
                        .map(|c| c.line.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                Ok(_) => missing.push(h.host.name.clone()),
                Err(e) => {
                    return Err(EngineError::Failed(format!(
                        "cannot check that {id} passed {required}: {}: {e}",
                        h.host.name
                    )));
                }
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(EngineError::Refused(format!(
                "{id} (sha256 {}) has not passed {required} on {}: deploy it to {required} first and let its health gate pass",
                short_sha(sha),
                missing.join(", ")
            )))
        }
    }
}

impl Run<'_> {
    pub(super) fn lock_reason(&self, release: Option<&ReleaseId>) -> String {
        match release {
            Some(r) => format!("{} {r} to {}", self.kind.as_str(), self.env.name),
            None => format!("{} {}", self.kind.as_str(), self.env.name),
        }
    }

    /// Connect and lock every host, reading each one's state under the lock.
    /// All or nothing: if any host cannot be locked, the others are released.
    pub(in crate::engine) fn lock_all(
        &self,
        release: Option<&ReleaseId>,
    ) -> Result<Vec<HostState>, EngineError> {
        let owner = LockOwner {
            operator: self.engine.operator.clone(),
            pid: std::process::id(),
            since: now_rfc3339(),
            reason: self.lock_reason(release),
            change: Some(self.change.clone()),
        };
        let results = self.fleet.all(|i, h| {
            self.step(i, Step::Connect, || h.connect().map_err(StepError::from))?;
            self.step(i, Step::Lock, || {
                h.with(|t| {
                    let layout = self.layout(i);
                    match host::lock(t, &layout, &owner, None)? {
                        LockAttempt::Held(LockState::Owned(dead), _)
                            if self.take_over && lock_is_dead(&dead, &self.engine.operator) =>
                        {
                            self.engine.events.note(
                                Some(i),
                                format!(
                                    "{}: taking over the lock of an interrupted change ({})",
                                    h.host.name,
                                    dead.describe()
                                ),
                            );
                            host::lock(t, &layout, &owner, dead.change.as_deref())
                        }
                        attempt => Ok(attempt),
                    }
                })
            })
        });
        let mut states = Vec::new();
        let mut held = Vec::new();
        let mut broken = Vec::new();
        let mut acquired = Vec::new();
        for (i, r) in results.into_iter().enumerate() {
            let name = &self.fleet.hosts[i].host.name;
            match r {
                Ok(LockAttempt::Acquired(state)) => {
                    acquired.push(i);
                    states.push(state);
                }
                Ok(LockAttempt::Held(lock, _)) => {
                    held.push(format!("{name}: locked by {}", lock.describe()))
                }
                Err(e) => broken.push(format!("{name}: {e}")),
            }
        }
        if held.is_empty() && broken.is_empty() {
            // A corrupt history line could change what this change decides
            // from history (previous release, migrations, cleanup): say so.
            let what = format!("this {}", self.kind.as_str());
            for (i, s) in states.iter().enumerate() {
                for w in
                    s.history_warnings(&self.fleet.hosts[i].host.name, &format!("{what} reads"))
                {
                    self.engine.events.note(None, w);
                }
            }
            // A host this very change had switched before it was interrupted
            // has the new slot live already; the one it left is in finish.json.
            *self.live_slots.lock().unwrap_or_else(|p| p.into_inner()) = states
                .iter()
                .map(|s| match (&s.journal, &s.pending_finish) {
                    (Some(j), Some(p)) if j.change == self.change && j.switched() => p.old,
                    _ => s.live_slot,
                })
                .collect();
            self.notify("started", "", "");
            if let Some(note) = &self.override_note {
                self.notify("override", "", note);
            }
            return Ok(states);
        }
        self.unlock(&acquired, false);
        let outcome = ChangeOutcome::Failed;
        if !held.is_empty() {
            let msg = format!(
                "{} is locked; nothing was changed\n  {}\n  wait for it, or break it with `shipdeck unlock {} --force --reason \"why\"` if its holder is gone",
                self.env.name,
                held.join("\n  "),
                self.env.name
            );
            self.finish_event(outcome, &msg);
            return Err(EngineError::Locked(msg));
        }
        let msg = format!(
            "cannot reach every host of {}; nothing was changed\n  {}",
            self.env.name,
            broken.join("\n  ")
        );
        self.finish_event(outcome, &msg);
        Err(EngineError::Failed(msg))
    }
}
