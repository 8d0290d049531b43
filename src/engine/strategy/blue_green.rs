//! Blue/green: two slots per host. A change starts its release on the idle
//! slot, gates it there, then the `switch` command moves traffic; the old slot
//! keeps running until the change is finished, so until then a rollback is
//! the switch back, with nothing restarted.
//!
//! On the host: `slots/blue` and `slots/green` link to the release each slot
//! runs, `.shipdeck/slot` names the live one, and `.shipdeck/finish.json`
//! says which slot still runs the old release. `current` always points at the
//! live slot's release, so everything else reads a blue/green host as any
//! other.

use std::time::Duration;

use super::{Batches, Rollout, Traffic, unpaused};
use crate::engine::change::{Line, Run};
use crate::engine::events::{ChangeKind, ChangeOutcome, Event, Step};
use crate::engine::{Engine, EngineError, rfc3339};
use crate::host::{self, HookEnv, HostState, StepError};
use crate::model::{Action, BlueGreen, HealthVerdict, Host, Outcome, ReleaseId, Slot, Strategy};
use crate::transport::HostHandle;

pub use crate::model::pending::{PendingFinish, describe_pending};

/// Every host in one batch; traffic moves by slots.
pub struct BlueGreenRollout;

impl Rollout for BlueGreenRollout {
    fn batches(&self, active: &[usize], _total: usize) -> Batches {
        unpaused(vec![active.to_vec()], 0)
    }

    fn traffic(&self) -> Traffic {
        Traffic::Slots
    }
}

/// A slot's port; the config refused hosts without one.
pub fn slot_port(bg: &BlueGreen, host: &Host, slot: Slot) -> u16 {
    crate::config::slot_port(bg, host, slot)
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// The slot a change starts on: the one not taking traffic.
pub fn idle_slot(state_live: Option<Slot>) -> Slot {
    state_live.map_or(Slot::Blue, Slot::other)
}

impl Run<'_> {
    fn blue_green(&self) -> Option<&BlueGreen> {
        match &self.env.strategy {
            Strategy::BlueGreen(bg) => Some(bg),
            _ => None,
        }
    }

    fn slot_env(
        &self,
        i: usize,
        release: &ReleaseId,
        previous: Option<&ReleaseId>,
        slot: Slot,
    ) -> HookEnv {
        let bg = self.blue_green().expect("a blue/green environment");
        let mut env = self.hook_env(i, release, previous);
        env.slot = Some((slot, slot_port(bg, &self.fleet.hosts[i].host, slot)));
        env
    }

    /// The hook variables of the slot a host's new release goes to.
    pub(in crate::engine) fn idle_slot_env(
        &self,
        i: usize,
        release: &ReleaseId,
        previous: Option<&ReleaseId>,
    ) -> HookEnv {
        self.slot_env(i, release, previous, idle_slot(self.live_slot(i)))
    }

    /// Link the idle slot to the release and restart it there; done once,
    /// also when a change is resumed.
    fn start_slot(
        &self,
        h: &HostHandle,
        i: usize,
        idle: Slot,
        release: &ReleaseId,
        env: &HookEnv,
    ) -> Result<(), StepError> {
        let cfg = &self.engine.config;
        let layout = self.layout(i);
        let slot_dir = layout.slot(idle);
        if self.has_done(i, Step::StartSlot) {
            self.skip(i, Step::StartSlot, "done before the change was interrupted");
        } else {
            self.step(i, Step::StartSlot, || {
                h.with(|t| {
                    host::run_together(
                        t,
                        "linking the idle slot",
                        &[host::link_slot_script(
                            &layout,
                            idle,
                            release,
                            &self.nonce(i),
                        )],
                    )
                })?;
                if let Some(restart) = &cfg.hooks.restart {
                    h.with(|t| {
                        host::run_command(
                            t,
                            &format!("restart on {idle}"),
                            &slot_dir,
                            restart,
                            env,
                            cfg.ssh.command_timeout,
                        )
                    })?;
                }
                Ok(())
            })?;
            self.write_journal(h, i);
        }
        Ok(())
    }

    /// Start `release` on the idle slot, gate it there, move traffic to it.
    /// Stands in for switch, restart and gate in a blue/green environment.
    /// Steps an interrupted run of this change finished are not done again.
    pub(in crate::engine) fn switch_slot(
        &self,
        h: &HostHandle,
        i: usize,
        release: &ReleaseId,
        previous: Option<&ReleaseId>,
        live: Option<Slot>,
    ) -> Result<HealthVerdict, StepError> {
        let cfg = &self.engine.config;
        let idle = idle_slot(live);
        let env = self.slot_env(i, release, previous, idle);
        self.start_slot(h, i, idle, release, &env)?;
        let verdict = match &cfg.health {
            None => HealthVerdict::NotConfigured,
            Some(health) => {
                let mut on_slot = h.host.clone();
                if let Some(http) = &mut on_slot.health_http {
                    http.port = env.slot.map_or(http.port, |(_, port)| port);
                }
                let gated = self.step(i, Step::Health, || {
                    crate::engine::health::gate(
                        h,
                        health,
                        &on_slot,
                        &env,
                        &env.release_dir,
                        &self.cancel,
                    )
                });
                match gated {
                    Ok(v) => v,
                    Err(e) => {
                        // Traffic never went there: the failed release must
                        // not keep running on the idle slot.
                        self.stop_slot(h, i, idle, release, previous);
                        return Err(e);
                    }
                }
            }
        };
        let finish_at = self.finish_at();
        // Nothing ran before a host's first release: nothing to finish.
        let pending = previous.map(|old_release| PendingFinish {
            change: self.change.clone(),
            live: idle,
            release: release.clone(),
            old: live,
            old_release: Some(old_release.clone()),
            finish_at,
        });
        self.step(i, Step::Switch, || {
            self.move_traffic(h, i, &env, release, pending.as_ref())
        })?;
        Ok(verdict)
    }

    /// When a change switched now finishes by itself, if `finish_after` says.
    fn finish_at(&self) -> Option<String> {
        self.blue_green()
            .and_then(|bg| bg.finish_after)
            .map(|d| rfc3339(std::time::SystemTime::now() + d))
    }

    /// Run `stop`, if configured, for `release` on `slot` (`previous` is the
    /// other release of the change, for the hook's variables). The release a
    /// host ran before its first blue/green change ran outside the slots
    /// (`slot` is `None`): `stop` runs in its own folder, without
    /// SHIPDECK_SLOT.
    fn run_stop(
        &self,
        h: &HostHandle,
        i: usize,
        slot: Option<Slot>,
        release: &ReleaseId,
        previous: Option<&ReleaseId>,
    ) -> Result<(), StepError> {
        let cfg = &self.engine.config;
        let Some(stop) = self.blue_green().and_then(|bg| bg.stop.as_ref()) else {
            return Ok(());
        };
        let layout = self.layout(i);
        let (what, dir, env) = match slot {
            Some(slot) => (
                format!("stop {slot}"),
                layout.slot(slot),
                self.slot_env(i, release, previous, slot),
            ),
            None => (
                format!("stop {release} (outside the slots)"),
                layout.release(release),
                self.hook_env(i, release, previous),
            ),
        };
        h.with(|t| host::run_command(t, &what, &dir, stop, &env, cfg.ssh.command_timeout))?;
        Ok(())
    }

    /// Stop a slot whose release must not keep running; what fails is said,
    /// and changes nothing else.
    fn stop_slot(
        &self,
        h: &HostHandle,
        i: usize,
        slot: Slot,
        release: &ReleaseId,
        previous: Option<&ReleaseId>,
    ) {
        if self.blue_green().is_none_or(|bg| bg.stop.is_none()) {
            return;
        }
        let r = self.step(i, Step::StopSlot, || {
            self.run_stop(h, i, Some(slot), release, previous)
        });
        if let Err(e) = r {
            self.engine.events.note(
                Some(i),
                format!("{}: the {slot} slot still runs: {e}", h.host.name),
            );
        }
    }

    /// Run `switch` for the slot in `env`, then point `current` at its
    /// release and record which slot is live, with this host's journal, in
    /// one round trip.
    fn move_traffic(
        &self,
        h: &HostHandle,
        i: usize,
        env: &HookEnv,
        release: &ReleaseId,
        pending: Option<&PendingFinish>,
    ) -> Result<(), StepError> {
        let cfg = &self.engine.config;
        let bg = self.blue_green().expect("a blue/green environment");
        let layout = self.layout(i);
        let (slot, _) = env.slot.expect("a slot");
        // From here on traffic may be on the new slot, whatever happens next:
        // going back must run `switch` again.
        self.touch_traffic(i);
        h.with(|t| {
            host::run_command(
                t,
                &format!("switch to {slot}"),
                &layout.release(release),
                &bg.switch,
                env,
                cfg.ssh.command_timeout,
            )
        })?;
        let pending = host::pending_finish_script(&layout, pending);
        h.with(|t| {
            host::run_together(
                t,
                "recording the live slot",
                &[
                    host::switch_script(&layout, Some(release), &self.nonce(i)),
                    host::live_slot_script(&layout, slot),
                    pending,
                    self.journal_script_with(i, Step::Switch),
                ],
            )
        })
    }

    /// Put traffic back on the slot it left, if this change moved it. On a
    /// host's first blue/green change there is no such slot: the old release
    /// starts on the other slot, is gated there, and takes the traffic.
    pub(in crate::engine) fn switch_back(
        &self,
        h: &HostHandle,
        i: usize,
        back: Option<&ReleaseId>,
        left: &ReleaseId,
    ) -> Result<(), StepError> {
        let Some(back) = back else {
            return Ok(());
        };
        if !self.traffic_touched(i) {
            return Ok(());
        }
        match self.live_slot(i) {
            Some(old) => {
                let env = self.slot_env(i, back, Some(left), old);
                self.move_traffic(h, i, &env, back, None)
            }
            None => {
                let new = idle_slot(None);
                self.switch_slot(h, i, back, Some(left), Some(new))
                    .map(|_| ())
            }
        }
    }

    /// Rolling a blue/green host back: before the change is finished the old
    /// slot still runs the target, and switching back is all it takes.
    pub(in crate::engine) fn roll_back_slot(
        &self,
        h: &HostHandle,
        i: usize,
        from: Option<&ReleaseId>,
        target: &ReleaseId,
        state: &HostState,
    ) -> Result<(HealthVerdict, Option<String>), StepError> {
        match &state.pending_finish {
            Some(PendingFinish {
                old: Some(old),
                old_release: Some(old_release),
                live,
                release,
                ..
            }) if old_release == target => {
                let env = self.slot_env(i, target, from, *old);
                // The slot traffic leaves keeps running until finished, as
                // after a deploy: rolling forward again is a switch too.
                let pending = PendingFinish {
                    change: self.change.clone(),
                    live: *old,
                    release: target.clone(),
                    old: Some(*live),
                    old_release: Some(release.clone()),
                    finish_at: self.finish_at(),
                };
                self.step(i, Step::Switch, || {
                    self.move_traffic(h, i, &env, target, Some(&pending))
                })?;
                Ok((
                    HealthVerdict::NotRun,
                    Some(format!(
                        "traffic back on {old} ({target}); nothing restarted; {live} keeps {release} until `shipdeck finish`"
                    )),
                ))
            }
            _ => {
                let v = self.switch_slot(h, i, target, from, state.live_slot)?;
                Ok((v, None))
            }
        }
    }
}

impl Engine {
    /// Finish the blue/green change of an environment: stop every host's old
    /// slot. From then on a rollback restarts the old release on a slot.
    pub fn finish(&self, env_name: &str) -> Result<crate::engine::ChangeReport, EngineError> {
        self.finish_change(env_name, None)
    }

    /// Finish only what `change` left pending (a finish that waited out
    /// `finish_after` must not stop the old slot of a change made meanwhile).
    pub fn finish_change(
        &self,
        env_name: &str,
        change: Option<&str>,
    ) -> Result<crate::engine::ChangeReport, EngineError> {
        self.finish_change_with(env_name, change, &crate::engine::ChangeOptions::default())
    }

    /// A deploy, promote or resume that switched a blue/green environment
    /// with `finish_after` keeps the old slots that long (until then a
    /// rollback is the switch back), then stops them. `None`: nothing to
    /// wait for, or the wait was cancelled (the slots stay for `shipdeck
    /// finish`; the console also finishes them when due).
    pub fn finish_when_due(
        &self,
        report: &crate::engine::ChangeReport,
    ) -> Option<Result<crate::engine::ChangeReport, EngineError>> {
        let (env, _) = self.environment(&report.env).ok()?;
        let after = finish_after(&env.strategy)?;
        if report.outcome != ChangeOutcome::Succeeded {
            return None;
        }
        self.events.note(
            None,
            format!(
                "the old slots keep running for {} (until then a rollback is the switch back); Ctrl-C leaves them for `shipdeck finish {}`",
                crate::engine::human_duration(after),
                report.env
            ),
        );
        if self.cancel_token().wait(after) {
            return None;
        }
        Some(self.finish_change(&report.env, Some(&report.change)))
    }

    pub fn finish_change_with(
        &self,
        env_name: &str,
        change: Option<&str>,
        opts: &crate::engine::ChangeOptions,
    ) -> Result<crate::engine::ChangeReport, EngineError> {
        let (env, fleet) = self.environment(env_name)?;
        let Strategy::BlueGreen(_) = &env.strategy else {
            return Err(EngineError::Usage(format!(
                "{env_name} is not a blue/green environment: there is nothing to finish"
            )));
        };
        let mut run = Run::new(self, env, fleet, ChangeKind::Finish, None);
        run.set_options(opts);
        run.finish(change)
    }
}

impl Run<'_> {
    /// Stop one host's old slot and record it.
    fn finish_host(&self, h: &HostHandle, i: usize, p: &PendingFinish) -> Result<(), StepError> {
        let layout = self.layout(i);
        let r = self.step(i, Step::StopSlot, || {
            if let Some(old_release) = &p.old_release {
                self.run_stop(h, i, p.old, old_release, Some(&p.release))?;
            }
            h.with(|t| {
                host::run_together(
                    t,
                    "finishing",
                    &[host::pending_finish_script(&layout, None)],
                )
            })
        });
        let message = match &r {
            Ok(()) => format!(
                "{} stopped ({}); {} live with {}",
                p.old
                    .map_or("the old release".to_owned(), |s| format!("{s} slot")),
                p.old_release
                    .as_ref()
                    .map_or("nothing".into(), ToString::to_string),
                p.live,
                p.release
            ),
            Err(e) => e.to_string(),
        };
        let _ = self.record(
            h,
            i,
            Line {
                action: Action::Finish,
                release: Some(&p.release),
                sha256: None,
                from: p.old_release.as_ref(),
                outcome: if r.is_ok() {
                    Outcome::Success
                } else {
                    Outcome::Failed
                },
                health: HealthVerdict::NotRun,
                message: Some(message),
            },
        );
        r
    }

    fn finish(&self, change: Option<&str>) -> Result<crate::engine::ChangeReport, EngineError> {
        let states = self.lock_all(None)?;
        let pending: Vec<Option<&PendingFinish>> = states
            .iter()
            .map(|s| {
                s.pending_finish
                    .as_ref()
                    .filter(|p| change.is_none_or(|c| p.change == c))
            })
            .collect();
        let todo: Vec<usize> = (0..states.len())
            .filter(|&i| pending[i].is_some())
            .collect();
        let results = self.fleet.each(&todo, |i, h| {
            let Some(p) = pending[i] else {
                return Ok(());
            };
            self.finish_host(h, i, p)
        });
        let all: Vec<usize> = (0..self.fleet.len()).collect();
        self.unlock(&all, false);
        let failed: Vec<String> = todo
            .iter()
            .zip(&results)
            .filter_map(|(&i, r)| {
                r.as_ref()
                    .err()
                    .map(|e| format!("{}: {e}", self.fleet.hosts[i].host.name))
            })
            .collect();
        let (outcome, summary) = if todo.is_empty() {
            (
                ChangeOutcome::NothingToDo,
                match change {
                    Some(c) => format!(
                        "{}: change {c} has nothing left to finish (a later change took its slots over, or it was finished)",
                        self.env.name
                    ),
                    None => format!("{} has no blue/green change to finish", self.env.name),
                },
            )
        } else if failed.is_empty() {
            (
                ChangeOutcome::Succeeded,
                format!(
                    "finished {}: the old slot stopped on {} host(s)",
                    self.env.name,
                    todo.len()
                ),
            )
        } else {
            (
                ChangeOutcome::Failed,
                format!(
                    "finishing {} failed on:\n  {}",
                    self.env.name,
                    failed.join("\n  ")
                ),
            )
        };
        self.engine.events.emit(Event::Note {
            host: None,
            message: summary.clone(),
        });
        Ok(self.plain_report(outcome, summary))
    }
}

/// How long a deploy waits before finishing by itself, if configured.
fn finish_after(strategy: &Strategy) -> Option<Duration> {
    match strategy {
        Strategy::BlueGreen(bg) => bg.finish_after,
        _ => None,
    }
}
