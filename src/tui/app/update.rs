//! The reducer: every message (keys, engine events, monitor events, the
//! clock) changes the one `App`, and returns the effects to run.

use super::*;

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
                let rollback_env = self.rollback_env.take();
                let requested = self.requested.take();
                match result {
                    Ok(report) => {
                        let tone = match report.outcome {
                            ChangeOutcome::Succeeded | ChangeOutcome::NothingToDo => Tone::Good,
                            _ => Tone::Bad,
                        };
                        self.say(report.summary.clone(), tone);
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
                        // While `O` is offered the status shows the refusal
                        // with the key; this stays once the offer is gone.
                        self.say(msg.lines().next().unwrap_or_default(), Tone::Bad);
                        if let Some(effect) = requested {
                            self.offer = Some(Offer {
                                effect,
                                message: msg,
                            });
                        }
                    }
                    Err(ChangeError::Other(e)) => {
                        if let Some(c) = self.change.as_mut().filter(|c| c.running()) {
                            c.finished = Some((ChangeOutcome::Failed, e.clone(), self.now));
                        }
                        self.say(e, Tone::Bad);
                    }
                }
                if self.quitting {
                    return vec![Effect::Quit];
                }
                Vec::new()
            }
        }
    }

    pub(super) fn engine_event(&mut self, ev: Event) {
        match ev {
            Event::ChangeStarted {
                change,
                env,
                kind,
                release,
                hosts,
            } => {
                self.select_latest = false;
                let names = self
                    .envs
                    .iter()
                    .find(|e| e.name == env)
                    .map(|e| e.hosts.clone())
                    .unwrap_or(hosts);
                self.change = Some(ChangeView {
                    id: change,
                    env,
                    kind,
                    release,
                    started: self.now,
                    hosts: names
                        .into_iter()
                        .map(|name| HostProgress {
                            name,
                            step: None,
                            state: StepState::Waiting,
                            steps_done: 0,
                            steps_total: 3,
                            error: None,
                            failed: false,
                            reverted: false,
                        })
                        .collect(),
                    batch: None,
                    notes: Vec::new(),
                    pause: None,
                    analysis: None,
                    refused: None,
                    aborting: false,
                    finished: None,
                });
            }
            Event::Planned(plan) => {
                if let Some(c) = &mut self.change {
                    if c.release.is_none() {
                        c.release = plan.release.clone();
                    }
                    for (h, hp) in c.hosts.iter_mut().zip(&plan.hosts) {
                        h.steps_total = 3 + hp.prepare.len() + hp.publish.len();
                        if let Some(why) = &hp.skip {
                            h.state = StepState::Skipped;
                            h.error = Some(why.clone());
                        }
                    }
                }
            }
            Event::BatchStarted { index, of, .. } => {
                if let Some(c) = &mut self.change {
                    c.batch = Some((index + 1, of));
                }
            }
            Event::HostStep { host, step, status } => {
                let Some(h) = self.change.as_mut().and_then(|c| c.hosts.get_mut(host)) else {
                    return;
                };
                h.step = Some(step);
                match status {
                    StepStatus::Started if !h.failed => h.state = StepState::Running,
                    StepStatus::Started => {}
                    StepStatus::Done { .. } => {
                        h.state = if h.failed {
                            StepState::Failed
                        } else {
                            StepState::Done
                        };
                        h.steps_done += 1;
                        if step == Step::Revert {
                            h.reverted = true;
                        }
                    }
                    StepStatus::Skipped { .. } => {}
                    StepStatus::Failed { error, .. } => {
                        h.state = StepState::Failed;
                        h.failed = true;
                        h.error = Some(error);
                    }
                }
            }
            Event::Note { message, .. } => {
                if let Some(c) = &mut self.change {
                    c.notes.push(message);
                }
            }
            Event::Paused {
                batch,
                of,
                canary,
                wait,
                why,
            } => {
                let Some(c) = &mut self.change else { return };
                // Sent again within one pause (a timed pause the analysis
                // could not decide now waits for the operator): what this
                // console said still stands. A new pause starts afresh.
                let same = c.pause.as_ref().filter(|p| p.batch == batch);
                let sent = same.and_then(|p| p.sent);
                if same.is_none() {
                    c.analysis = None;
                }
                c.pause = Some(PauseView {
                    batch,
                    of,
                    canary,
                    until: wait.map(|w| self.now + w),
                    why,
                    sent,
                });
            }
            Event::Analysis { verdict, lines } => {
                if let Some(c) = &mut self.change {
                    // A breach ends the pause: the canary is being put back.
                    if matches!(verdict, Verdict::Breach { .. }) {
                        c.pause = None;
                    }
                    c.analysis = Some(AnalysisView { verdict, lines });
                }
            }
            Event::Continued { by, control } => {
                if let Some(c) = &mut self.change
                    && let Some(p) = c.pause.take()
                {
                    let how = match control {
                        Control::Next => "continued",
                        Control::Promote => "continued through every remaining step",
                        Control::Abort => "ABORTED: the canary hosts go back",
                    };
                    c.notes
                        .push(format!("step {} of {}: {how} by {by}", p.batch + 1, p.of));
                    c.aborting = control == Control::Abort;
                }
            }
            Event::ChangeFinished {
                outcome, summary, ..
            } => {
                if let Some(c) = &mut self.change {
                    c.pause = None;
                    c.finished = Some((outcome, summary, self.now));
                }
            }
        }
    }
}
