//! Keys: what each one does in the moment the console is in, from the key
//! table (`keymap`), and moving the selection.

use super::*;

impl App {
    /// Select environment `env`, on its first host.
    pub fn select_env(&mut self, env: usize) {
        if env < self.envs.len() && env != self.env_cursor {
            self.env_cursor = env;
            self.host_cursor = 0;
        }
    }

    pub(super) fn key(&mut self, key: KeyEvent) -> Vec<Effect> {
        // The operator is here: the selection is theirs from now on.
        self.select_latest = false;
        // Any key but the second `R` disarms a forced rollback.
        let armed = self.armed.take().filter(|a| self.now < a.until);
        match &mut self.overlay {
            Overlay::Filter(text) => {
                match key.code {
                    KeyCode::Enter => {
                        let t = std::mem::take(text);
                        self.log_filter = (!t.is_empty()).then_some(t);
                        self.overlay = Overlay::None;
                    }
                    KeyCode::Esc => {
                        self.log_filter = None;
                        self.overlay = Overlay::None;
                    }
                    code => type_into(text, code),
                }
                return Vec::new();
            }
            Overlay::Reason(text) => {
                match key.code {
                    KeyCode::Enter if !text.trim().is_empty() => {
                        let reason = text.trim().to_owned();
                        self.overlay = Overlay::None;
                        return self.override_with(reason);
                    }
                    KeyCode::Enter => {}
                    KeyCode::Esc => {
                        self.overlay = Overlay::None;
                        self.offer = None;
                        self.say("not overridden; nothing was changed", Tone::Info);
                    }
                    code => type_into(text, code),
                }
                return Vec::new();
            }
            Overlay::ConfirmQuit => {
                self.overlay = Overlay::None;
                let yes = matches!(key.code, KeyCode::Char('q') | KeyCode::Char('y'));
                if yes && !self.change_running() {
                    // It ended while the question was open.
                    return vec![Effect::Quit];
                }
                if yes {
                    self.quitting = true;
                    self.say(
                        "cancelling the change before quitting: switched hosts go back…",
                        Tone::Bad,
                    );
                    return vec![Effect::Cancel];
                }
                self.say("still here; the change goes on", Tone::Info);
                return Vec::new();
            }
            Overlay::ConfirmCancel => {
                self.overlay = Overlay::None;
                let Some(what) = self.running_change().map(ChangeView::label) else {
                    self.say("the change already ended: nothing to cancel", Tone::Info);
                    return Vec::new();
                };
                if key.code == KeyCode::Char('y') {
                    self.say(
                        format!("CANCELLING {what}: it stops after the current step and switched hosts go back"),
                        Tone::Bad,
                    );
                    return vec![Effect::Cancel];
                }
                self.say(format!("not cancelled: {what} goes on"), Tone::Info);
                return Vec::new();
            }
            Overlay::Help | Overlay::Output => {
                // Any key closes an overlay; only `q` also acts.
                self.overlay = Overlay::None;
                if key.code != KeyCode::Char('q') {
                    return Vec::new();
                }
            }
            Overlay::None => {}
        }
        let Some(action) = keymap::action_for(&key, self.moment()) else {
            return Vec::new();
        };
        if self.readonly && keymap::binding(action).changes_hosts {
            self.say(
                "read-only console: nothing can be changed from here",
                Tone::Info,
            );
            return Vec::new();
        }
        // What a key would change cannot be read on a terminal this small.
        if self.too_small() && keymap::binding(action).changes_hosts {
            return Vec::new();
        }
        if action == Action::Rollback {
            return self.rollback(armed);
        }
        self.act(action)
    }

    pub(super) fn act(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Up | Action::Down => {
                self.move_cursor(if action == Action::Up { -1 } else { 1 });
                Vec::new()
            }
            Action::NextPane | Action::PrevPane => {
                let i = PANES.iter().position(|p| *p == self.focus).unwrap_or(0);
                let n = PANES.len();
                let next = if action == Action::NextPane {
                    (i + 1) % n
                } else {
                    (i + n - 1) % n
                };
                self.focus = PANES[next];
                Vec::new()
            }
            Action::Deploy | Action::Promote => self.ship(action == Action::Promote),
            Action::Rollback => self.rollback(None),
            Action::NextStep => self.control(Control::Next),
            Action::PromoteAll => self.control(Control::Promote),
            Action::AbortCanary => self.control(Control::Abort),
            Action::Resume => self.resume(),
            Action::Finish => self.finish(),
            Action::Override => {
                self.overlay = Overlay::Reason(String::new());
                Vec::new()
            }
            Action::Cancel => {
                if self.change_running() {
                    self.overlay = Overlay::ConfirmCancel;
                }
                Vec::new()
            }
            Action::Back => {
                if self.offer.take().is_some() {
                    self.say("not overridden; nothing was changed", Tone::Info);
                } else if self.log_filter.take().is_some() {
                    self.say("log filter cleared", Tone::Info);
                }
                Vec::new()
            }
            Action::ShowOutput => {
                self.overlay = Overlay::Output;
                Vec::new()
            }
            Action::Filter => {
                self.overlay = Overlay::Filter(self.log_filter.clone().unwrap_or_default());
                Vec::new()
            }
            Action::ToggleFollow => {
                if self.follow_logs {
                    self.pause_logs();
                } else {
                    self.follow_logs = true;
                    self.log_anchor = None;
                }
                self.log_scroll = 0;
                Vec::new()
            }
            Action::ToggleHostLogs => {
                self.one_host_logs = !self.one_host_logs;
                Vec::new()
            }
            Action::Help => {
                self.overlay = Overlay::Help;
                Vec::new()
            }
            Action::Quit => {
                if self.change_running() {
                    self.overlay = Overlay::ConfirmQuit;
                    Vec::new()
                } else {
                    vec![Effect::Quit]
                }
            }
        }
    }

    pub(super) fn move_cursor(&mut self, delta: isize) {
        let step = |v: usize, len: usize| -> usize {
            if len == 0 {
                0
            } else {
                (v as isize - delta).clamp(0, len as isize - 1) as usize
            }
        };
        match self.focus {
            Pane::Environments => {
                // Walk hosts, crossing into the next environment at the ends.
                let hosts = self.envs[self.env_cursor].hosts.len();
                if delta > 0 && self.host_cursor + 1 < hosts {
                    self.host_cursor += 1;
                } else if delta > 0 && self.env_cursor + 1 < self.envs.len() {
                    self.env_cursor += 1;
                    self.host_cursor = 0;
                } else if delta < 0 && self.host_cursor > 0 {
                    self.host_cursor -= 1;
                } else if delta < 0 && self.env_cursor > 0 {
                    self.env_cursor -= 1;
                    self.host_cursor = self.envs[self.env_cursor].hosts.len().saturating_sub(1);
                }
            }
            // Shown newest first: down goes to older releases.
            Pane::Releases => {
                self.release_cursor = step(self.release_cursor, self.releases.len());
            }
            Pane::Logs => {
                // Scrolling back pauses following; coming back to the end resumes it.
                if delta < 0 {
                    if self.follow_logs {
                        self.pause_logs();
                    }
                    self.log_scroll += 1;
                } else if self.log_scroll > 0 {
                    self.log_scroll -= 1;
                } else if !self.follow_logs {
                    self.follow_logs = true;
                    self.log_anchor = None;
                }
            }
        }
    }

    pub(super) fn pause_logs(&mut self) {
        self.follow_logs = false;
        self.log_anchor = Some(self.monitor.last_log_seq() + 1);
    }
}
