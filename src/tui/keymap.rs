//! Keys are data, listed once: this table drives the key handler, the footer
//! and the `?` overlay, so they can never disagree. A binding may hold only
//! in some moments (`When`): during a canary pause `n`, `P` and `R` steer the
//! change, and the keys that would start another one are gone.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Up,
    Down,
    NextPane,
    PrevPane,
    Deploy,
    Promote,
    Rollback,
    /// Canary pause: go on to the next step.
    NextStep,
    /// Canary pause: go through every remaining step without pausing.
    PromoteAll,
    /// Canary pause: stop and put the canary hosts back.
    AbortCanary,
    Cancel,
    ShowOutput,
    Filter,
    ToggleFollow,
    ToggleHostLogs,
    Help,
    Quit,
}

/// When a binding holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Always,
    /// A change of this console is paused between canary steps.
    Paused,
    /// Anything but a canary pause.
    NotPaused,
}

impl When {
    pub fn holds(self, paused: bool) -> bool {
        match self {
            When::Always => true,
            When::Paused => paused,
            When::NotPaused => !paused,
        }
    }
}

pub struct Binding {
    pub keys: &'static [KeyCode],
    /// Shown for the keys, e.g. `j/k`.
    pub key_label: &'static str,
    pub action: Action,
    /// Short, for the footer; empty keeps it out of the footer.
    pub footer: &'static str,
    pub help: &'static str,
    /// Changes hosts: refused in a read-only console.
    pub changes_hosts: bool,
    pub when: When,
}

pub const BINDINGS: &[Binding] = &[
    // First: while a canary pauses, these are what the operator came for.
    Binding {
        keys: &[KeyCode::Char('n')],
        key_label: "n",
        action: Action::NextStep,
        footer: "next step",
        help: "canary paused: go on to the next step now",
        changes_hosts: true,
        when: When::Paused,
    },
    Binding {
        keys: &[KeyCode::Char('P')],
        key_label: "P",
        action: Action::PromoteAll,
        footer: "promote all",
        help: "canary paused: go through every remaining step without pausing again",
        changes_hosts: true,
        when: When::Paused,
    },
    Binding {
        keys: &[KeyCode::Char('R')],
        key_label: "R",
        action: Action::AbortCanary,
        footer: "ABORT canary",
        help: "canary paused: abort the change and put the canary hosts back on what they ran",
        changes_hosts: true,
        when: When::Paused,
    },
    Binding {
        keys: &[KeyCode::Char('d')],
        key_label: "d",
        action: Action::Deploy,
        footer: "deploy",
        help: "deploy the selected release to the selected environment",
        changes_hosts: true,
        when: When::NotPaused,
    },
    Binding {
        keys: &[KeyCode::Char('p')],
        key_label: "p",
        action: Action::Promote,
        footer: "promote",
        help: "promote the selected release to the selected environment (it must have passed the one it requires)",
        changes_hosts: true,
        when: When::NotPaused,
    },
    Binding {
        keys: &[KeyCode::Char('R')],
        key_label: "R",
        action: Action::Rollback,
        footer: "ROLLBACK",
        help: "roll the selected environment back to its previous release, at once, no questions (across a schema migration: R twice)",
        changes_hosts: true,
        when: When::NotPaused,
    },
    Binding {
        keys: &[KeyCode::Char('c'), KeyCode::Esc],
        key_label: "c/Esc",
        action: Action::Cancel,
        footer: "cancel",
        help: "cancel the change in flight: it stops after the current step and switched hosts go back",
        changes_hosts: true,
        when: When::Always,
    },
    Binding {
        keys: &[KeyCode::Char('?')],
        key_label: "?",
        action: Action::Help,
        footer: "help",
        help: "this help",
        changes_hosts: false,
        when: When::Always,
    },
    Binding {
        keys: &[KeyCode::Char('q')],
        key_label: "q",
        action: Action::Quit,
        footer: "quit",
        help: "quit (asks while a change is running)",
        changes_hosts: false,
        when: When::Always,
    },
    Binding {
        keys: &[KeyCode::Char('o'), KeyCode::Enter],
        key_label: "o/Enter",
        action: Action::ShowOutput,
        footer: "output",
        help: "show what failed in the last change, host by host",
        changes_hosts: false,
        when: When::Always,
    },
    Binding {
        keys: &[KeyCode::Char('j'), KeyCode::Down],
        key_label: "j/k",
        action: Action::Down,
        footer: "move",
        help: "move down / up in the focused pane (arrows work too)",
        changes_hosts: false,
        when: When::Always,
    },
    Binding {
        keys: &[KeyCode::Char('k'), KeyCode::Up],
        key_label: "k",
        action: Action::Up,
        footer: "",
        help: "move up",
        changes_hosts: false,
        when: When::Always,
    },
    Binding {
        keys: &[KeyCode::Tab],
        key_label: "Tab",
        action: Action::NextPane,
        footer: "pane",
        help: "focus the next pane (Shift-Tab: the one before)",
        changes_hosts: false,
        when: When::Always,
    },
    Binding {
        keys: &[KeyCode::BackTab],
        key_label: "S-Tab",
        action: Action::PrevPane,
        footer: "",
        help: "focus the previous pane",
        changes_hosts: false,
        when: When::Always,
    },
    Binding {
        keys: &[KeyCode::Char('/')],
        key_label: "/",
        action: Action::Filter,
        footer: "filter",
        help: "filter the logs (Enter keeps it, Esc clears it)",
        changes_hosts: false,
        when: When::Always,
    },
    Binding {
        keys: &[KeyCode::Char('f')],
        key_label: "f",
        action: Action::ToggleFollow,
        footer: "follow",
        help: "follow the newest log lines, or pause to read",
        changes_hosts: false,
        when: When::Always,
    },
    Binding {
        keys: &[KeyCode::Char('h')],
        key_label: "h",
        action: Action::ToggleHostLogs,
        footer: "host logs",
        help: "logs of every host merged, or of the selected host only",
        changes_hosts: false,
        when: When::Always,
    },
];

/// The bindings that hold now, in the table's order.
pub fn active(paused: bool) -> impl Iterator<Item = &'static Binding> {
    BINDINGS.iter().filter(move |b| b.when.holds(paused))
}

/// The action a key press means now, if any.
pub fn action_for(key: &KeyEvent, paused: bool) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return match key.code {
            KeyCode::Char('c') => Some(Action::Quit),
            _ => None,
        };
    }
    active(paused)
        .find(|b| b.keys.contains(&key.code))
        .map(|b| b.action)
}

pub fn binding(action: Action) -> &'static Binding {
    BINDINGS
        .iter()
        .find(|b| b.action == action)
        .expect("every action has a binding")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_key_is_bound_twice_at_the_same_moment() {
        for paused in [false, true] {
            let mut seen = Vec::new();
            for b in active(paused) {
                for k in b.keys {
                    assert!(!seen.contains(k), "{k:?} bound twice (paused: {paused})");
                    seen.push(*k);
                }
            }
        }
    }

    #[test]
    fn r_rolls_back_or_aborts_the_canary_and_n_p_only_hold_in_a_pause() {
        let key = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
        assert_eq!(action_for(&key('R'), false), Some(Action::Rollback));
        assert_eq!(action_for(&key('R'), true), Some(Action::AbortCanary));
        assert_eq!(action_for(&key('n'), true), Some(Action::NextStep));
        assert_eq!(action_for(&key('P'), true), Some(Action::PromoteAll));
        assert_eq!(action_for(&key('n'), false), None);
        assert_eq!(action_for(&key('P'), false), None);
        assert_eq!(action_for(&key('d'), true), None);
        assert_eq!(action_for(&key('c'), true), Some(Action::Cancel));
    }

    #[test]
    fn every_action_has_a_binding() {
        use Action::*;
        for a in [
            Up,
            Down,
            NextPane,
            PrevPane,
            Deploy,
            Promote,
            Rollback,
            NextStep,
            PromoteAll,
            AbortCanary,
            Cancel,
            ShowOutput,
            Filter,
            ToggleFollow,
            ToggleHostLogs,
            Help,
            Quit,
        ] {
            binding(a);
        }
    }
}
