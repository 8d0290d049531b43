//! Keys are data, listed once: this table drives the key handler, the footer
//! and the `?` overlay, so they can never disagree. A binding holds on some
//! pages (`Where`: the console, or the history and a host's detail) and in
//! some moments (`When`): during a canary pause of the selected environment
//! `n`, `P` and `R` steer the change, and the keys that would start another
//! one are gone; `r`, `F` and `O` appear only where there is something to
//! resume, finish or override, `c` only while a change runs, `R` only where
//! a rollback can start. A key that does not hold says why, in the status
//! line when pressed and in `?`. `Esc` only closes, clears or goes back: no
//! key but `c` (and `q`, both asking first) cancels a change.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Up,
    Down,
    PageUp,
    PageDown,
    /// The oldest line (logs, history), paused there.
    Top,
    /// The newest line, following again.
    Bottom,
    NextPane,
    PrevPane,
    /// In the history or a host's detail: the next environment.
    NextEnv,
    PrevEnv,
    Deploy,
    Promote,
    Rollback,
    /// Canary pause: go on to the next step.
    NextStep,
    /// Canary pause: go through every remaining step without pausing.
    PromoteAll,
    /// Canary pause: stop and put the canary hosts back.
    AbortCanary,
    /// Continue the selected environment's interrupted change.
    Resume,
    /// Blue/green: stop the old slots of the selected environment.
    Finish,
    /// Start the change the deploy window refused, with a reason.
    Override,
    /// Ask to cancel the change in flight (`y` confirms).
    Cancel,
    /// Close an overlay, leave a page, clear the log filter, leave an
    /// offer: never a change to a host.
    Back,
    /// The selected environment's history, newest first.
    History,
    /// The selected host's detail.
    OpenHost,
    ShowOutput,
    Filter,
    /// Show only the hosts whose name holds what is typed.
    FilterHosts,
    ToggleFollow,
    ToggleHostLogs,
    Help,
    Quit,
}

/// The page the console shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Page {
    #[default]
    Console,
    History,
    Host,
}

/// On which pages a binding holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Where {
    Anywhere,
    Console,
    /// The history or a host's detail.
    Pages,
}

impl Where {
    fn holds(self, page: Page) -> bool {
        match self {
            Where::Anywhere => true,
            Where::Console => page == Page::Console,
            Where::Pages => page != Page::Console,
        }
    }

    fn why_not(self) -> &'static str {
        match self {
            Where::Anywhere => "",
            Where::Console => "on the console only (Esc goes back to it)",
            Where::Pages => "in the history (H) or a host's detail (Enter) only",
        }
    }
}

/// When a binding holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Always,
    /// A canary change of the selected environment is paused between steps:
    /// this console's, or one run elsewhere.
    Paused,
    /// Nothing runs from this console and no canary pause waits: a
    /// change can start.
    Ready,
    /// The selected environment has an interrupted change (and no pause).
    Interrupted,
    /// The selected blue/green environment still runs old slots.
    Unfinished,
    /// The deploy window refused the last change this console asked for.
    Offered,
    /// A change of this console runs.
    Running,
    /// No pause, and a rollback of the selected environment can start (the
    /// console says why not, when not).
    CanRollBack,
    /// A change ran in this console: its output can be shown.
    ChangeRan,
    /// A host is selected: the Environments pane has the focus.
    OnHosts,
}

impl When {
    pub fn holds(self, m: Moment) -> bool {
        match self {
            When::Always => true,
            When::Paused => m.paused,
            When::Ready => !m.paused && !m.running,
            When::Interrupted => m.interrupted && !m.paused && !m.running,
            When::Unfinished => m.unfinished && !m.paused && !m.running,
            When::Offered => m.offered && !m.paused && !m.running,
            When::Running => m.running,
            When::CanRollBack => m.can_roll_back && !m.paused,
            When::ChangeRan => m.change_ran,
            When::OnHosts => m.on_hosts,
        }
    }

    /// Whether a pause is as this condition needs it: of the bindings of
    /// one key (`R`), the one a pause or its absence is for.
    fn pause_fits(self, m: Moment) -> bool {
        match self {
            When::Paused => m.paused,
            When::Ready
            | When::CanRollBack
            | When::Interrupted
            | When::Unfinished
            | When::Offered => !m.paused,
            _ => true,
        }
    }

    /// Why a binding does not hold at `m`, said in `?` and when its key is
    /// pressed. `CanRollBack`'s reason depends on the hosts: the console
    /// gives it.
    pub fn why_not(self, m: Moment) -> &'static str {
        let starts = matches!(
            self,
            When::Ready | When::Interrupted | When::Unfinished | When::Offered | When::CanRollBack
        );
        if starts && m.paused {
            return "not during a canary pause: n, P and R steer it";
        }
        if starts && m.running && self != When::CanRollBack {
            return "not while a change of this console runs (c cancels it)";
        }
        match self {
            When::Always | When::Ready => "",
            When::Paused => "only while a canary of the selected environment is paused",
            When::Interrupted => "only when the selected environment has an interrupted change",
            When::Unfinished => {
                "only while the selected blue/green environment still runs its old slots"
            }
            When::Offered => "only after the deploy window refused a change",
            When::Running => "only while a change of this console runs",
            When::CanRollBack => "only when the selected environment can be rolled back",
            When::ChangeRan => "no change has run in this console yet (H: the history)",
            When::OnHosts => "with a host selected in the Environments pane (Tab to it)",
        }
    }
}

/// What the bindings that hold depend on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Moment {
    pub page: Page,
    pub paused: bool,
    pub interrupted: bool,
    pub unfinished: bool,
    pub offered: bool,
    pub running: bool,
    pub can_roll_back: bool,
    pub change_ran: bool,
    pub on_hosts: bool,
}

pub struct Binding {
    pub keys: &'static [KeyCode],
    /// Shown for the keys, e.g. `j/↓`: each key in one label only.
    pub key_label: &'static str,
    pub action: Action,
    /// Short, for the footer; empty keeps it out of the footer. Keys that
    /// act on an environment say which in the footer (the view adds it).
    pub footer: &'static str,
    pub help: &'static str,
    /// Changes hosts: refused in a read-only console.
    pub changes_hosts: bool,
    pub when: When,
    pub on: Where,
}

impl Binding {
    pub fn holds(&self, m: Moment) -> bool {
        self.on.holds(m.page) && self.when.holds(m)
    }

    /// Why it does not hold now (empty when it does).
    pub fn why_not(&self, m: Moment) -> &'static str {
        if !self.on.holds(m.page) {
            self.on.why_not()
        } else if !self.when.holds(m) {
            self.when.why_not(m)
        } else {
            ""
        }
    }
}

/// A binding, with the defaults most have.
const fn key(
    keys: &'static [KeyCode],
    key_label: &'static str,
    action: Action,
    footer: &'static str,
    help: &'static str,
) -> Binding {
    Binding {
        keys,
        key_label,
        action,
        footer,
        help,
        changes_hosts: false,
        when: When::Always,
        on: Where::Anywhere,
    }
}

/// A binding that changes hosts, from the console only.
const fn change(
    keys: &'static [KeyCode],
    key_label: &'static str,
    action: Action,
    footer: &'static str,
    help: &'static str,
    when: When,
) -> Binding {
    Binding {
        keys,
        key_label,
        action,
        footer,
        help,
        changes_hosts: true,
        when,
        on: Where::Console,
    }
}

const fn on(b: Binding, on: Where) -> Binding {
    Binding { on, ..b }
}

const fn when(b: Binding, when: When) -> Binding {
    Binding { when, ..b }
}

/// In the table's order: the footer shows the first ones that fit.
pub const BINDINGS: &[Binding] = &[
    // First: while a canary pauses, these are what the operator came for.
    change(
        &[KeyCode::Char('n')],
        "n",
        Action::NextStep,
        "next step",
        "canary paused: go on to the next step now",
        When::Paused,
    ),
    change(
        &[KeyCode::Char('P')],
        "P",
        Action::PromoteAll,
        "promote all",
        "canary paused: go through every remaining step without pausing again",
        When::Paused,
    ),
    change(
        &[KeyCode::Char('R')],
        "R",
        Action::AbortCanary,
        "ABORT canary",
        "canary paused: abort the change and put the canary hosts back on what they ran",
        When::Paused,
    ),
    // Only where there is something to do: shown first, then.
    change(
        &[KeyCode::Char('O')],
        "O",
        Action::Override,
        "override window",
        "the deploy window refused the change: start it anyway, with a reason the history keeps",
        When::Offered,
    ),
    change(
        &[KeyCode::Char('r')],
        "r",
        Action::Resume,
        "resume",
        "continue the selected environment's interrupted change from the host and step it stopped at (R undoes it)",
        When::Interrupted,
    ),
    change(
        &[KeyCode::Char('F')],
        "F",
        Action::Finish,
        "finish",
        "blue/green: stop the old slots of the selected environment; until then a rollback is the switch back",
        When::Unfinished,
    ),
    change(
        &[KeyCode::Char('d')],
        "d",
        Action::Deploy,
        "deploy",
        "deploy the selected release to the selected environment",
        When::Ready,
    ),
    change(
        &[KeyCode::Char('p')],
        "p",
        Action::Promote,
        "promote",
        "promote the selected release to the selected environment (it must have passed the one it requires)",
        When::Ready,
    ),
    change(
        &[KeyCode::Char('R')],
        "R",
        Action::Rollback,
        "roll back",
        "roll the selected environment back to its previous release (the footer names both), at once (across a schema migration: R twice)",
        When::CanRollBack,
    ),
    Binding {
        keys: &[KeyCode::Char('c')],
        key_label: "c",
        action: Action::Cancel,
        footer: "cancel",
        help: "cancel the change in flight (asks y first): it stops after the current step, switched hosts go back",
        changes_hosts: true,
        when: When::Running,
        on: Where::Anywhere,
    },
    key(
        &[KeyCode::Char('H')],
        "H",
        Action::History,
        "history",
        "the selected environment's history from its hosts, newest first: who did what, when, and how it ended (H again: back)",
    ),
    when(
        on(
            key(
                &[KeyCode::Enter],
                "Enter",
                Action::OpenHost,
                "host",
                "the selected host: what it runs and ran, rollback, health, lock, last log lines",
            ),
            Where::Console,
        ),
        When::OnHosts,
    ),
    key(
        &[KeyCode::Esc],
        "Esc",
        Action::Back,
        "",
        "close, clear or go back (overlay, prompt, page, log filter, offer); never changes a host",
    ),
    key(
        &[KeyCode::Char('?')],
        "?",
        Action::Help,
        "help",
        "this help: every key, and why the ones that do nothing now do nothing",
    ),
    key(
        &[KeyCode::Char('q')],
        "q",
        Action::Quit,
        "quit",
        "quit (asks while a change is running)",
    ),
    when(
        key(
            &[KeyCode::Char('o')],
            "o",
            Action::ShowOutput,
            "output",
            "what the last change of this console said, and what failed in it, host by host",
        ),
        When::ChangeRan,
    ),
    key(
        &[KeyCode::Char('j'), KeyCode::Down],
        "j/↓",
        Action::Down,
        "move",
        "down: the next host or release, a log line (in the history: a line; in a host's detail: the next host)",
    ),
    key(
        &[KeyCode::Char('k'), KeyCode::Up],
        "k/↑",
        Action::Up,
        "",
        "up, as j goes down",
    ),
    key(
        &[KeyCode::PageUp],
        "PgUp",
        Action::PageUp,
        "",
        "a page back in the logs (in the history: in it; in a host's detail: in its log lines)",
    ),
    key(
        &[KeyCode::PageDown],
        "PgDn",
        Action::PageDown,
        "",
        "a page on, as PgUp goes back",
    ),
    key(
        &[KeyCode::Char('g'), KeyCode::Home],
        "g/Home",
        Action::Top,
        "",
        "to the top: the oldest log line kept, paused there (in the history: the newest change)",
    ),
    key(
        &[KeyCode::Char('G'), KeyCode::End],
        "G/End",
        Action::Bottom,
        "",
        "to the bottom: the newest log line, following again (in the history: the oldest change)",
    ),
    on(
        key(
            &[KeyCode::Tab],
            "Tab",
            Action::NextPane,
            "pane",
            "focus the next pane (Shift-Tab: the one before)",
        ),
        Where::Console,
    ),
    on(
        key(
            &[KeyCode::Tab],
            "Tab",
            Action::NextEnv,
            "environment",
            "the next environment's history or host",
        ),
        Where::Pages,
    ),
    on(
        key(
            &[KeyCode::BackTab],
            "S-Tab",
            Action::PrevPane,
            "",
            "focus the previous pane",
        ),
        Where::Console,
    ),
    on(
        key(
            &[KeyCode::BackTab],
            "S-Tab",
            Action::PrevEnv,
            "",
            "the previous environment's history or host",
        ),
        Where::Pages,
    ),
    on(
        key(
            &[KeyCode::Char('/')],
            "/",
            Action::Filter,
            "filter",
            "filter the logs as you type (Enter keeps it, Esc clears it)",
        ),
        Where::Console,
    ),
    on(
        key(
            &[KeyCode::Char('s')],
            "s",
            Action::FilterHosts,
            "",
            "show only the hosts whose name holds what you type (Enter keeps it, Esc shows all)",
        ),
        Where::Console,
    ),
    on(
        key(
            &[KeyCode::Char('f')],
            "f",
            Action::ToggleFollow,
            "follow",
            "follow the newest log lines, or pause to read",
        ),
        Where::Console,
    ),
    on(
        key(
            &[KeyCode::Char('h')],
            "h",
            Action::ToggleHostLogs,
            "host logs",
            "logs of every host merged, or of the selected host only",
        ),
        Where::Console,
    ),
];

/// The bindings that hold now, in the table's order.
pub fn active(m: Moment) -> impl Iterator<Item = &'static Binding> {
    BINDINGS.iter().filter(move |b| b.holds(m))
}

/// The action a key press means now, if any.
pub fn action_for(key: &KeyEvent, m: Moment) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return match key.code {
            KeyCode::Char('c') => Some(Action::Quit),
            _ => None,
        };
    }
    active(m)
        .find(|b| b.keys.contains(&key.code))
        .map(|b| b.action)
}

/// The binding a key would have if it held now: the one of this page
/// first. `None` for a key bound to nothing.
pub fn refused(key: &KeyEvent, m: Moment) -> Option<&'static Binding> {
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return None;
    }
    let bound = || BINDINGS.iter().filter(|b| b.keys.contains(&key.code));
    bound()
        .find(|b| b.on.holds(m.page) && b.when.pause_fits(m))
        .or_else(|| bound().find(|b| b.on.holds(m.page)))
        .or_else(|| bound().next())
}

pub fn binding(action: Action) -> &'static Binding {
    BINDINGS
        .iter()
        .find(|b| b.action == action)
        .expect("every action has a binding")
}

/// Every key once, in the table's order: the binding that holds now where
/// one does, else the one the key would have here (`R` outside a pause is
/// the rollback), which `?` marks, with why.
pub fn every_key(m: Moment) -> Vec<&'static Binding> {
    let mut out: Vec<&'static Binding> = Vec::new();
    for b in BINDINGS {
        if out.iter().any(|o| o.keys == b.keys) {
            continue;
        }
        let mut same = BINDINGS.iter().filter(|o| o.keys == b.keys);
        let now = same.clone().find(|o| o.holds(m));
        let meant = same.find(|o| o.on.holds(m.page) && o.when.pause_fits(m));
        out.push(now.or(meant).unwrap_or(b));
    }
    out
}

#[cfg(test)]
mod tests;
