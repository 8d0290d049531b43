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
        self.lock_hosts(release).map(|l| l.states)
    }

    /// As [`lock_all`](Self::lock_all), saying which hosts were left out
    /// (with `--skip-unreachable`) and whose dead locks were taken over.
    ///
    /// Locks are taken in one fixed order: the first host that answers is
    /// locked alone, then the others together. Two operators acting at once
    /// meet at that first host, so one of them gets every lock and the other
    /// queues (up to `--lock-wait`) instead of both getting some and backing
    /// off.
    /// Connect every host, lock the first that answers alone, then the
    /// others: `None` for a host not tried.
    fn take_locks(&self, owner: &LockOwner) -> Vec<Option<Result<Attempt, StepError>>> {
        let connected = self
            .fleet
            .all(|i, h| self.step(i, Step::Connect, || h.connect().map_err(StepError::from)));
        let reachable: Vec<usize> = (0..connected.len())
            .filter(|&i| connected[i].is_ok())
            .collect();
        let deadline = Instant::now() + self.lock_wait;
        let mut results: Vec<Option<Result<Attempt, StepError>>> =
            connected.into_iter().map(|r| r.err().map(Err)).collect();
        if let Some((&first, rest)) = reachable.split_first() {
            let gate = self.lock_one(first, owner, deadline);
            let won = matches!(
                gate,
                Ok(Attempt {
                    lock: LockAttempt::Acquired(_),
                    ..
                })
            );
            results[first] = Some(gate);
            // Whoever does not hold the first lock takes no other: it would
            // only make the holder back off.
            let rest = if won { rest } else { &[] };
            let others = self
                .fleet
                .each(rest, |i, _| self.lock_one(i, owner, deadline));
            for (&i, r) in rest.iter().zip(others) {
                results[i] = Some(r);
            }
        }
        results
    }

    /// Why the change cannot start (its locks already released): a host
    /// locked by someone else, or hosts that do not answer.
    fn refusal(&self, held: Vec<String>, broken: Vec<(usize, String)>) -> EngineError {
        let outcome = ChangeOutcome::Failed;
        if !held.is_empty() {
            let msg = format!(
                "{} is locked; nothing was changed\n  {}\n  wait for it (--lock-wait), or break it with `shipdeck unlock {} --force --reason \"why\"` if its holder is gone",
                self.env.name,
                held.join("\n  "),
                self.env.name
            );
            self.finish_event(outcome, &msg);
            return EngineError::Locked(msg);
        }
        let unreachable: Vec<String> = broken.into_iter().map(|(_, e)| e).collect();
        let msg = format!(
            "cannot reach every host of {}; nothing was changed\n  {}{}",
            self.env.name,
            unreachable.join("\n  "),
            if self.kind == ChangeKind::Rollback {
                format!(
                    "\n  roll back the hosts that answer with `shipdeck rollback {} --skip-unreachable`",
                    self.env.name
                )
            } else {
                String::new()
            }
        );
        self.finish_event(outcome, &msg);
        EngineError::Failed(msg)
    }

    pub(in crate::engine) fn lock_hosts(
        &self,
        release: Option<&ReleaseId>,
    ) -> Result<Locked, EngineError> {
        let owner = LockOwner {
            operator: self.engine.operator.clone(),
            pid: std::process::id(),
            since: now_rfc3339(),
            reason: self.lock_reason(release),
            change: Some(self.change.clone()),
        };
        let results = self.take_locks(&owner);
        let mut locked = Locked {
            states: Vec::new(),
            unreachable: Vec::new(),
            taken_over: Vec::new(),
        };
        let (mut held, mut broken, mut acquired) = (Vec::new(), Vec::new(), Vec::new());
        for (i, r) in results.into_iter().enumerate() {
            let name = &self.fleet.hosts[i].host.name;
            let Some(r) = r else {
                // Not tried: the first host's lock is someone else's.
                locked.states.push(HostState::default());
                continue;
            };
            match r {
                Ok(Attempt {
                    lock: LockAttempt::Acquired(state),
                    taken_over,
                }) => {
                    acquired.push(i);
                    locked.states.push(state);
                    locked.taken_over.extend(taken_over);
                }
                Ok(Attempt {
                    lock: LockAttempt::Held(lock, state),
                    ..
                }) => {
                    held.push(self.held_by(name, &lock, &state));
                    locked.states.push(state);
                }
                Err(e) => {
                    broken.push((i, format!("{name}: {e}")));
                    locked.states.push(HostState::default());
                }
            }
        }
        if self.skip_unreachable && held.is_empty() && !acquired.is_empty() {
            locked.unreachable = std::mem::take(&mut broken);
        }
        if held.is_empty() && broken.is_empty() {
            let reached = locked.reachable();
            let states: Vec<HostState> = self.fleet.each(&reached, |i, h| {
                let mut state = locked.states[i].clone();
                self.reconcile(h, i, &mut state);
                state
            });
            for (&i, s) in reached.iter().zip(states) {
                locked.states[i] = s;
            }
            self.started_on(&locked);
            return Ok(locked);
        }
        self.unlock(&acquired, false);
        Err(self.refusal(held, broken))
    }

    /// Lock one host, queueing until `deadline` while a running change holds
    /// it; a lock left by an interrupted change of this machine is taken over
    /// where this change may (resume, rollback).
    fn lock_one(
        &self,
        i: usize,
        owner: &LockOwner,
        deadline: Instant,
    ) -> Result<Attempt, StepError> {
        let h = &self.fleet.hosts[i];
        let layout = self.layout(i);
        let mut said = false;
        let mut looked_again = false;
        self.step_judged(
            i,
            Step::Lock,
            || loop {
                let attempt = h.with(|t| host::lock(t, &layout, owner, None))?;
                let holder = match &attempt {
                    LockAttempt::Held(LockState::Owned(holder), _) => holder.clone(),
                    // Taken an instant ago: its owner file is being written.
                    LockAttempt::Held(LockState::Unknown(raw), _)
                        if raw.is_empty() && Instant::now() < deadline =>
                    {
                        let pause =
                            LOCK_RETRY.min(deadline.saturating_duration_since(Instant::now()));
                        if self.cancel.wait(pause) {
                            return Ok(Attempt::of(attempt));
                        }
                        continue;
                    }
                    _ => return Ok(Attempt::of(attempt)),
                };
                if lock_is_dead(&holder, &self.engine.operator) {
                    // Its process may have ended just after it released the
                    // lock we read: ask again once before calling it dead.
                    if !looked_again {
                        looked_again = true;
                        continue;
                    }
                    if !self.take_over {
                        return Ok(Attempt::of(attempt));
                    }
                    self.engine.events.note(
                        Some(i),
                        format!(
                            "{}: taking over the lock of an interrupted change ({})",
                            h.host.name,
                            holder.describe()
                        ),
                    );
                    let lock =
                        h.with(|t| host::lock(t, &layout, owner, holder.change.as_deref()))?;
                    let taken_over = matches!(lock, LockAttempt::Acquired(_)).then_some(holder);
                    return Ok(Attempt { lock, taken_over });
                }
                // A hold taken with `shipdeck lock` is not a queue to wait in.
                if holder.change.is_none() || Instant::now() >= deadline {
                    return Ok(Attempt::of(attempt));
                }
                if !said {
                    said = true;
                    self.engine.events.note(
                        Some(i),
                        format!(
                            "{}: waiting for the lock of {} (up to {}, --lock-wait)",
                            h.host.name,
                            holder.describe(),
                            human_duration(self.lock_wait)
                        ),
                    );
                }
                let pause = LOCK_RETRY.min(deadline.saturating_duration_since(Instant::now()));
                if self.cancel.wait(pause) {
                    return Ok(Attempt::of(attempt));
                }
            },
            |a| match &a.lock {
                LockAttempt::Acquired(_) => None,
                LockAttempt::Held(lock, _) => Some(format!("held by {}", lock.describe())),
            },
        )
    }

    /// History must say what the host runs. When the last release history
    /// moved the host to is not what `current` points at (a record lost to a
    /// full disk or a kill), a `reconcile` line says what it runs, before
    /// this change decides anything from history.
    fn reconcile(&self, h: &HostHandle, i: usize, state: &mut HostState) {
        let current = state.current();
        if current.is_none() && state.current_link.is_some() {
            return; // `current` points outside `releases/`: not ours to name.
        }
        let said = release_stack(&state.history).last().cloned();
        if said == current {
            return;
        }
        let name = |r: &Option<ReleaseId>| r.as_ref().map_or("nothing".into(), ToString::to_string);
        let why = format!(
            "history said {}, but current points at {}: recorded what the host runs (a history line was lost: a full disk, a kill)",
            name(&said),
            name(&current)
        );
        let sha = current
            .as_ref()
            .and_then(|c| state.verified.get(c).cloned());
        let record = self.history_line(
            h,
            Line {
                action: Action::Reconcile,
                release: current.as_ref(),
                sha256: sha.as_deref(),
                from: said.as_ref(),
                outcome: Outcome::Success,
                health: HealthVerdict::NotRun,
                message: Some(why.clone()),
            },
        );
        match h.with(|t| host::append_history(t, &self.layout(i), &record)) {
            Ok(()) => {
                self.engine
                    .events
                    .note(Some(i), format!("{}: {why}", h.host.name));
                state.history.push(record);
            }
            Err(e) => self.engine.events.note(
                Some(i),
                format!(
                    "{}: {why}; but that line could not be written: {e}",
                    h.host.name
                ),
            ),
        }
    }

    /// How a refusal names one host's lock; a change that died before it
    /// wrote its journal switched nothing, and says so.
    fn held_by(&self, name: &str, lock: &LockState, state: &HostState) -> String {
        match lock {
            LockState::Owned(o)
                if state.journal.is_none() && lock_is_dead(o, &self.engine.operator) =>
            {
                format!(
                    "{name}: locked by {}; that change was interrupted before it switched anything: `shipdeck rollback {env}` releases its lock and rolls nothing back",
                    o.describe(),
                    env = self.env.name
                )
            }
            lock => format!("{name}: locked by {}", lock.describe()),
        }
    }

    /// Every host is locked: say what a decision will read, and tell the team.
    fn started_on(&self, locked: &Locked) {
        let states = &locked.states;
        // A corrupt history line could change what this change decides
        // from history (previous release, migrations, cleanup): say so.
        let what = format!("this {}", self.kind.as_str());
        for (i, s) in states.iter().enumerate() {
            for w in s.history_warnings(&self.fleet.hosts[i].host.name, &format!("{what} reads")) {
                self.engine.events.note(None, w);
            }
        }
        // A host this very change had switched before it was interrupted
        // has the new slot live already; the one it left is in finish.json.
        self.hosts_mut(|hosts| {
            for (h, s) in hosts.iter_mut().zip(states) {
                h.live_slot = match (&s.journal, &s.pending_finish) {
                    (Some(j), Some(p)) if j.change == self.change && j.switched() => p.old,
                    _ => s.live_slot,
                };
            }
        });
        self.notify("started", "", "");
        if let Some(note) = &self.override_note {
            self.notify("override", "", note);
        }
    }
}

/// How often a queued change asks again for a lock.
const LOCK_RETRY: Duration = Duration::from_millis(200);

/// Every host's lock, taken: each host's state read under it.
pub(in crate::engine) struct Locked {
    /// One per host, in config order (an unreachable host's is empty).
    pub(in crate::engine) states: Vec<HostState>,
    /// Hosts left out by `--skip-unreachable`, with why.
    pub(in crate::engine) unreachable: Vec<(usize, String)>,
    /// The holders of dead locks this change took over.
    pub(in crate::engine) taken_over: Vec<LockOwner>,
}

impl Locked {
    /// The hosts this change holds: all but those left out.
    pub(in crate::engine) fn reachable(&self) -> Vec<usize> {
        (0..self.states.len())
            .filter(|i| !self.unreachable.iter().any(|(u, _)| u == i))
            .collect()
    }
}

/// One host's lock attempt.
struct Attempt {
    lock: LockAttempt,
    taken_over: Option<LockOwner>,
}

impl Attempt {
    fn of(lock: LockAttempt) -> Self {
        Attempt {
            lock,
            taken_over: None,
        }
    }
}
