//! The reducer's router: every message (keys, engine events, monitor
//! events, the clock) goes to the part of `App` it changes, and comes back
//! as the effects to run.

use super::*;
use crate::engine::{ChangeKind, ChangeOutcome};

impl App {
    pub fn update(&mut self, msg: Msg) -> Vec<Effect> {
        match msg {
            Msg::Key(key) => self.key(key),
            Msg::Resize(width, height) => {
                self.screen = Some((width, height));
                Vec::new()
            }
            Msg::Tick => {
                if let Some(a) = self.armed.take_if(|a| self.now >= a.until) {
                    self.say(
                        format!(
                            "{} (not rolled back; R twice within {}s rolls back anyway)",
                            a.message,
                            FORCE_WINDOW.as_secs()
                        ),
                        Tone::Bad,
                    );
                }
                self.finish_when_due()
            }
            Msg::Told(result) => {
                match result {
                    Ok(said) => self.say(said, Tone::Info),
                    Err(e) => {
                        self.told = None;
                        self.say(e, Tone::Bad);
                    }
                }
                Vec::new()
            }
            Msg::Monitor(ev) => {
                self.monitor_event(ev);
                Vec::new()
            }
            Msg::Releases(list) => {
                let first = self.releases.is_empty();
                self.releases = list;
                self.releases_read = true;
                if first || self.release_cursor >= self.releases.len() {
                    self.release_cursor = self.releases.len().saturating_sub(1);
                }
                Vec::new()
            }
            Msg::Engine(ev) => {
                self.engine_event(ev);
                Vec::new()
            }
            Msg::ChangeDone(result) => {
                self.change_done(result);
                if self.quitting {
                    return vec![Effect::Quit];
                }
                Vec::new()
            }
        }
    }

    fn monitor_event(&mut self, ev: MonitorEvent) {
        let state = matches!(ev, MonitorEvent::State { .. });
        self.monitor.apply(ev);
        if state && self.select_latest {
            self.select_env(self.latest_env());
            // Every host read once: the selection settles there.
            let read = |(env, row): (usize, &EnvRow)| {
                (0..row.hosts.len()).all(|host| {
                    self.monitor
                        .host(HostKey { env, host })
                        .is_some_and(|h| h.view.is_some())
                })
            };
            if self.envs.iter().enumerate().all(read) {
                self.select_latest = false;
            }
        }
    }

    /// A change's thread ended: what it said goes to the status line; a
    /// refusal across a migration arms the second `R`, one by the deploy
    /// window offers `O`.
    fn change_done(&mut self, result: Result<ChangeReport, ChangeError>) {
        let rollback_env = self.rollback_env.take();
        let requested = self.requested.take();
        match result {
            Ok(report) => {
                let tone = match report.outcome {
                    ChangeOutcome::Succeeded | ChangeOutcome::NothingToDo => Tone::Good,
                    _ => Tone::Bad,
                };
                self.say(self.on_screen(&report.summary), tone);
            }
            Err(ChangeError::Migration(msg)) => {
                if let Some(c) = self
                    .change
                    .as_mut()
                    .filter(|c| c.kind == ChangeKind::Rollback)
                {
                    if c.running() {
                        c.finished = Some((ChangeOutcome::Failed, msg.clone(), self.now));
                    }
                    c.refused = Some(msg.clone());
                }
                self.say(msg.clone(), Tone::Bad);
                if let Some(env) = rollback_env {
                    self.armed = Some(Armed {
                        env,
                        message: msg,
                        until: self.now + FORCE_WINDOW,
                    });
                }
            }
            Err(ChangeError::Window(msg)) => {
                // While `O` is offered the status shows the refusal with the
                // key; this stays once the offer is gone.
                self.say(msg.lines().next().unwrap_or_default(), Tone::Bad);
                if let Some(effect) = requested {
                    self.offer = Some(Offer {
                        effect,
                        message: msg,
                    });
                }
            }
            Err(ChangeError::Other(e)) => {
                let e = self.on_screen(&e);
                if let Some(c) = self.change.as_mut().filter(|c| c.running()) {
                    c.finished = Some((ChangeOutcome::Failed, e.clone(), self.now));
                }
                self.say(e, Tone::Bad);
            }
        }
    }
}
