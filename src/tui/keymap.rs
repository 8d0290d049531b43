//! Keys are data, listed once: this table drives the key handler, the footer
//! and the `?` overlay, so they can never disagree. A binding may hold only
//! in some moments (`When`): during a canary pause of the selected
//! environment `n`, `P` and `R` steer the change, and the keys that would
//! start another one are gone; `r`, `F` and `O` appear only where there is
//! something to resume, finish or override, `c` only while a change runs.
//! `Esc` only closes, clears or goes back: no key but `c` (and `q`, both
//! asking first) cancels a change.

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
    /// Continue the selected environment's interrupted change.
    Resume,
    /// Blue/green: stop the old slots of the selected environment.
    Finish,
    /// Start the change the deploy window refused, with a reason.
    Override,
    /// Ask to cancel the change in flight (`y` confirms).
    Cancel,
    /// Close an overlay, clear the log filter, leave an offer: never a
    /// change to a host.
    Back,
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
    /// A canary change of the selected environment is paused between steps:
    /// this console's, or one run elsewhere.
    Paused,
    /// Anything but a canary pause.
    NotPaused,
    /// The selected environment has an interrupted change (and no pause).
    Interrupted,
    /// The selected blue/green environment still runs old slots.
    Unfinished,
    /// The deploy window refused the last change this console asked for.
    Offered,
    /// A change of this console runs.
    Running,
}

/// What the bindings that hold depend on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Moment {
    pub paused: bool,
    pub interrupted: bool,
    pub unfinished: bool,
    pub offered: bool,
    pub running: bool,
}

impl When {
    pub fn holds(self, m: Moment) -> bool {
        match self {
            When::Always => true,
            When::Paused => m.paused,
            When::NotPaused => !m.paused,
            When::Interrupted => m.interrupted && !m.paused,
            When::Unfinished => m.unfinished && !m.paused,
            When::Offered => m.offered && !m.paused,
            When::Running => m.running,
        }
    }
}

pub struct Binding {
    pub keys: &'static [KeyCode],
    /// Shown for the keys, e.g. `j/k`.
    pub key_label: &'static str,
    pub action: Action,
    /// Short, for the footer; empty keeps it out of the footer. Keys that
    /// act on an environment say which in the footer (the view adds it).
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
    // Only where there is something to do: shown first, then.
    Binding {
        keys: &[KeyCode::Char('O')],
        key_label: "O",
        action: Action::Override,
        footer: "override window",
        help: "the deploy window refused the change: start it anyway, with a reason the history keeps",
        changes_hosts: true,
        when: When::Offered,
    },
    Binding {
        keys: &[KeyCode::Char('r')],
        key_label: "r",
        action: Action::Resume,
        footer: "resume",
        help: "continue the selected environment's interrupted change from the host and step it stopped at (R undoes it)",
        changes_hosts: true,
        when: When::Interrupted,
    },
    Binding {
        keys: &[KeyCode::Char('F')],
        key_label: "F",
        action: Action::Finish,
        footer: "finish",
        help: "blue/green: stop the old slots of the selected environment; until then a rollback is the switch back",
        changes_hosts: true,
        when: When::Unfinished,
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
        footer: "roll back",
        help: "roll the selected environment back to its previous release (the footer names both), at once (across a schema migration: R twice)",
        changes_hosts: true,
        when: When::NotPaused,
    },
    Binding {
        keys: &[KeyCode::Char('c')],
        key_label: "c",
        action: Action::Cancel,
        footer: "cancel",
        help: "cancel the change in flight (asks y first): it stops after the current step, switched hosts go back",
        changes_hosts: true,
        when: When::Running,
    },
    Binding {
        keys: &[KeyCode::Esc],
        key_label: "Esc",
        action: Action::Back,
        footer: "",
        help: "close, clear or go back (overlay, prompt, log filter, offer); never changes a host",
        changes_hosts: false,
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
pub fn active(m: Moment) -> impl Iterator<Item = &'static Binding> {
    BINDINGS.iter().filter(move |b| b.when.holds(m))
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

pub fn binding(action: Action) -> &'static Binding {
    BINDINGS
        .iter()
        .find(|b| b.action == action)
        .expect("every action has a binding")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_moment() -> Vec<Moment> {
        (0..32u8)
            .map(|b| Moment {
                paused: b & 1 != 0,
                interrupted: b & 2 != 0,
                unfinished: b & 4 != 0,
                offered: b & 8 != 0,
                running: b & 16 != 0,
            })
            .collect()
    }

    #[test]
    fn no_key_is_bound_twice_at_the_same_moment() {
        for m in every_moment() {
            let mut seen = Vec::new();
            for b in active(m) {
                for k in b.keys {
                    assert!(!seen.contains(k), "{k:?} bound twice ({m:?})");
                    seen.push(*k);
                }
            }
        }
    }

    #[test]
    fn r_rolls_back_or_aborts_the_canary_and_n_p_only_hold_in_a_pause() {
        let key = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
        let idle = Moment::default();
        let paused = Moment {
            paused: true,
            ..idle
        };
        assert_eq!(action_for(&key('R'), idle), Some(Action::Rollback));
        assert_eq!(action_for(&key('R'), paused), Some(Action::AbortCanary));
        assert_eq!(action_for(&key('n'), paused), Some(Action::NextStep));
        assert_eq!(action_for(&key('P'), paused), Some(Action::PromoteAll));
        assert_eq!(action_for(&key('n'), idle), None);
        assert_eq!(action_for(&key('P'), idle), None);
        assert_eq!(action_for(&key('d'), paused), None);
        // c cancels only while a change of this console runs.
        assert_eq!(action_for(&key('c'), paused), None);
        let running = Moment {
            running: true,
            ..paused
        };
        assert_eq!(action_for(&key('c'), running), Some(Action::Cancel));
    }

    #[test]
    fn esc_never_changes_a_host_at_any_moment() {
        let esc = KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE);
        for m in every_moment() {
            assert_eq!(action_for(&esc, m), Some(Action::Back), "{m:?}");
            assert!(!binding(Action::Back).changes_hosts);
        }
        // Of the keys that change hosts, none is Esc.
        for b in BINDINGS.iter().filter(|b| b.changes_hosts) {
            assert!(!b.keys.contains(&KeyCode::Esc), "{}", b.key_label);
        }
    }

    #[test]
    fn resume_finish_and_override_hold_only_where_they_mean_something() {
        let key = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
        let idle = Moment::default();
        for c in ['r', 'F', 'O'] {
            assert_eq!(action_for(&key(c), idle), None, "{c}");
        }
        let all = Moment {
            interrupted: true,
            unfinished: true,
            offered: true,
            paused: false,
            running: false,
        };
        assert_eq!(action_for(&key('r'), all), Some(Action::Resume));
        assert_eq!(action_for(&key('F'), all), Some(Action::Finish));
        assert_eq!(action_for(&key('O'), all), Some(Action::Override));
        // A pause comes first: nothing else starts while it waits.
        let paused = Moment {
            paused: true,
            ..all
        };
        assert_eq!(action_for(&key('r'), paused), None);
        assert_eq!(action_for(&key('F'), paused), None);
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
            Resume,
            Finish,
            Override,
            Cancel,
            Back,
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
