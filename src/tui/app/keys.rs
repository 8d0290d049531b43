//! Keys: what each one does on the page and in the moment the console is
//! in, from the key table (`keymap`); an overlay or a prompt takes the keys
//! first. A key that does nothing now says why in the status line.

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
        let effects = self.key_press(key);
        self.clamp_scrolls();
        effects
    }

    /// Lists scroll no further than their last line.
    fn clamp_scrolls(&mut self) {
        let (w, h) = self.screen.unwrap_or((120, 40));
        let (total, shown) = super::super::view::page_extent(self, w, h);
        self.page_scroll = self.page_scroll.min(total.saturating_sub(shown));
        let (total, shown) = super::super::view::help_extent(self, w, h);
        self.help_scroll = self.help_scroll.min(total.saturating_sub(shown));
    }

    fn key_press(&mut self, key: KeyEvent) -> Vec<Effect> {
        // The operator is here: the selection is theirs from now on.
        self.select_latest = false;
        // Any key but the second `R` disarms a forced rollback.
        let armed = self.armed.take().filter(|a| self.now < a.until);
        if let Some(effects) = self.overlay_key(key) {
            return effects;
        }
        let m = self.moment();
        let Some(action) = keymap::action_for(&key, m) else {
            if let Some(b) = keymap::refused(&key, m) {
                let why = self.why_not(b);
                if b.action == Action::Rollback && why.contains("not rolled back") {
                    self.say(why, Tone::Info);
                } else {
                    self.say(format!("{}: {why}", b.key_label), Tone::Info);
                }
            }
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

    /// An open overlay or prompt takes the key: `Some` with what it does,
    /// `None` when the key goes on to the key table (`q` under the help).
    fn overlay_key(&mut self, key: KeyEvent) -> Option<Vec<Effect>> {
        match &mut self.overlay {
            Overlay::Filter(text) => {
                match key.code {
                    KeyCode::Enter => {
                        let t = std::mem::take(text);
                        self.logs.filter = (!t.is_empty()).then_some(t);
                        self.overlay = Overlay::None;
                    }
                    KeyCode::Esc => {
                        self.logs.filter = None;
                        self.overlay = Overlay::None;
                        self.say("log filter cleared", Tone::Info);
                    }
                    code => type_into(text, code),
                }
                self.refilter_logs();
                Some(Vec::new())
            }
            Overlay::HostFilter(text) => {
                match key.code {
                    KeyCode::Enter => {
                        let t = std::mem::take(text);
                        self.host_filter = (!t.is_empty()).then_some(t);
                        self.overlay = Overlay::None;
                    }
                    KeyCode::Esc => {
                        self.host_filter = None;
                        self.overlay = Overlay::None;
                        self.say("every host shown again", Tone::Info);
                    }
                    code => type_into(text, code),
                }
                self.select_shown_host();
                Some(Vec::new())
            }
            Overlay::Reason(text) => {
                match key.code {
                    KeyCode::Enter if !text.trim().is_empty() => {
                        let reason = text.trim().to_owned();
                        self.overlay = Overlay::None;
                        return Some(self.override_with(reason));
                    }
                    KeyCode::Enter => {}
                    KeyCode::Esc => {
                        self.overlay = Overlay::None;
                        self.offer = None;
                        self.say("not overridden; nothing was changed", Tone::Info);
                    }
                    code => type_into(text, code),
                }
                Some(Vec::new())
            }
            Overlay::ConfirmQuit => Some(self.confirm_quit(key)),
            Overlay::ConfirmCancel => Some(self.confirm_cancel(key)),
            Overlay::Help => {
                if let Some(lines) = scroll_lines(key.code) {
                    self.help_scroll = shift(self.help_scroll, lines);
                    return Some(Vec::new());
                }
                // Any other key closes the help; only `q` also acts.
                self.overlay = Overlay::None;
                (key.code != KeyCode::Char('q')).then(Vec::new)
            }
            Overlay::Output => {
                self.overlay = Overlay::None;
                (key.code != KeyCode::Char('q')).then(Vec::new)
            }
            Overlay::None => None,
        }
    }

    fn confirm_quit(&mut self, key: KeyEvent) -> Vec<Effect> {
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
        Vec::new()
    }

    fn confirm_cancel(&mut self, key: KeyEvent) -> Vec<Effect> {
        self.overlay = Overlay::None;
        let Some(what) = self.running_change().map(ChangeView::label) else {
            self.say("the change already ended: nothing to cancel", Tone::Info);
            return Vec::new();
        };
        if key.code == KeyCode::Char('y') {
            self.say(
                format!(
                    "CANCELLING {what}: it stops after the current step and switched hosts go back"
                ),
                Tone::Bad,
            );
            return vec![Effect::Cancel];
        }
        self.say(format!("not cancelled: {what} goes on"), Tone::Info);
        Vec::new()
    }

    pub(super) fn act(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Up | Action::Down => self.step(if action == Action::Up { -1 } else { 1 }),
            Action::PageUp | Action::PageDown => self.page(action == Action::PageUp),
            Action::Top | Action::Bottom => self.jump(action == Action::Top),
            Action::NextPane | Action::PrevPane => {
                let i = PANES.iter().position(|p| *p == self.focus).unwrap_or(0);
                let n = PANES.len();
                let next = if action == Action::NextPane {
                    (i + 1) % n
                } else {
                    (i + n - 1) % n
                };
                self.focus = PANES[next];
            }
            Action::NextEnv | Action::PrevEnv => {
                let n = self.envs.len();
                let next = if action == Action::NextEnv {
                    (self.env_cursor + 1) % n
                } else {
                    (self.env_cursor + n - 1) % n
                };
                self.select_env(next);
                self.page_scroll = 0;
            }
            Action::Deploy | Action::Promote => return self.ship(action == Action::Promote),
            Action::Rollback => return self.rollback(None),
            Action::NextStep => return self.control(Control::Next),
            Action::PromoteAll => return self.control(Control::Promote),
            Action::AbortCanary => return self.control(Control::Abort),
            Action::Resume => return self.resume(),
            Action::Finish => return self.finish(),
            Action::Override => self.overlay = Overlay::Reason(String::new()),
            Action::Cancel => {
                if self.change_running() {
                    self.overlay = Overlay::ConfirmCancel;
                }
            }
            Action::Quit => {
                if !self.change_running() {
                    return vec![Effect::Quit];
                }
                self.overlay = Overlay::ConfirmQuit;
            }
            other => self.show(other),
        }
        Vec::new()
    }

    /// The keys that change only what is shown: pages, overlays, the logs.
    fn show(&mut self, action: Action) {
        match action {
            Action::Back => self.back(),
            Action::History => {
                self.page = if self.page == Page::History {
                    Page::Console
                } else {
                    Page::History
                };
                self.page_scroll = 0;
            }
            Action::OpenHost => {
                self.page = Page::Host;
                self.page_scroll = 0;
            }
            Action::ShowOutput => self.overlay = Overlay::Output,
            Action::Filter => {
                self.overlay = Overlay::Filter(self.logs.filter.clone().unwrap_or_default());
            }
            Action::FilterHosts => {
                self.overlay = Overlay::HostFilter(self.host_filter.clone().unwrap_or_default());
            }
            Action::ToggleFollow => {
                if self.logs.follow {
                    self.pause_logs();
                    self.logs.scroll = 0;
                } else {
                    self.follow_logs();
                }
            }
            Action::ToggleHostLogs => {
                self.logs.one_host = !self.logs.one_host;
                self.refilter_logs();
            }
            Action::Help => {
                self.overlay = Overlay::Help;
                self.help_scroll = 0;
            }
            _ => {}
        }
    }

    /// `Esc`: out of a page, else leave an offer, else clear the log filter.
    fn back(&mut self) {
        if self.page != Page::Console {
            self.page = Page::Console;
            self.page_scroll = 0;
        } else if self.offer.take().is_some() {
            self.say("not overridden; nothing was changed", Tone::Info);
        } else if self.logs.filter.take().is_some() {
            self.refilter_logs();
            self.say("log filter cleared", Tone::Info);
        }
    }

    /// `j`/`k`: the focused pane's selection on the console, a line of the
    /// history, the next host in a host's detail.
    fn step(&mut self, delta: isize) {
        match self.page {
            Page::Console => self.move_cursor(delta),
            Page::History => self.page_scroll = shift(self.page_scroll, delta),
            Page::Host => {
                self.move_host(delta);
                self.page_scroll = 0;
            }
        }
    }

    /// A page back (`back`) or on: the logs, the history, a host's log lines.
    fn page(&mut self, back: bool) {
        let (w, h) = self.screen.unwrap_or((120, 40));
        let (_, shown) = super::super::view::page_extent(self, w, h);
        let rows = shown.saturating_sub(1).max(1) as isize;
        match self.page {
            Page::Console => self.page_logs(back),
            // The history lists the newest first (back is down the list); a
            // host's log lines scroll back from the newest.
            Page::History | Page::Host => {
                self.page_scroll = shift(self.page_scroll, if back { rows } else { -rows });
            }
        }
    }

    /// `g` (`top`) or `G`: the logs' oldest line, paused, or their newest,
    /// following; the history's first or last line; a host's oldest or
    /// newest log lines.
    fn jump(&mut self, top: bool) {
        match (self.page, top) {
            (Page::Console, true) => self.logs_to_top(),
            (Page::Console, false) => self.follow_logs(),
            (Page::History, true) => self.page_scroll = 0,
            (Page::History, false) | (Page::Host, true) => self.page_scroll = usize::MAX / 2,
            (Page::Host, false) => self.page_scroll = 0,
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
            Pane::Environments => self.move_host(delta),
            // Shown newest first: down goes to older releases.
            Pane::Releases => {
                self.release_cursor = step(self.release_cursor, self.releases.len());
            }
            // Up goes back; down past the newest line follows again.
            Pane::Logs => self.scroll_logs(-delta),
        }
    }

    /// Walk the hosts the environments pane shows, crossing into the next
    /// environment at the ends; stays put when no other host is shown.
    fn move_host(&mut self, delta: isize) {
        let from = (self.env_cursor, self.host_cursor);
        loop {
            let before = (self.env_cursor, self.host_cursor);
            self.move_host_once(delta);
            if (self.env_cursor, self.host_cursor) == before {
                (self.env_cursor, self.host_cursor) = from;
                return;
            }
            if self.host_shown(self.selected_host()) {
                return;
            }
        }
    }

    /// While the host filter hides the selected host: the first one shown,
    /// in this environment if it has one, else anywhere.
    fn select_shown_host(&mut self) {
        if self.host_shown(self.selected_host()) {
            return;
        }
        let here = self.env_cursor;
        let envs = std::iter::once(here).chain((0..self.envs.len()).filter(|e| *e != here));
        for env in envs {
            let first = (0..self.envs[env].hosts.len())
                .find(|&host| self.host_shown(HostKey { env, host }));
            if let Some(host) = first {
                (self.env_cursor, self.host_cursor) = (env, host);
                return;
            }
        }
    }

    fn move_host_once(&mut self, delta: isize) {
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
}

/// Lines a key scrolls a list by: a line (`j`/`k`, arrows), a page, or to
/// an end; `None` for any other key.
fn scroll_lines(code: KeyCode) -> Option<isize> {
    match code {
        KeyCode::Char('j') | KeyCode::Down => Some(1),
        KeyCode::Char('k') | KeyCode::Up => Some(-1),
        KeyCode::PageDown => Some(10),
        KeyCode::PageUp => Some(-10),
        KeyCode::Char('G') | KeyCode::End => Some(isize::MAX / 4),
        KeyCode::Char('g') | KeyCode::Home => Some(isize::MIN / 4),
        _ => None,
    }
}

/// `v` moved by `delta`, not below 0 (the views clamp the top).
fn shift(v: usize, delta: isize) -> usize {
    if delta < 0 {
        v.saturating_sub(delta.unsigned_abs())
    } else {
        v.saturating_add(delta as usize)
    }
}
