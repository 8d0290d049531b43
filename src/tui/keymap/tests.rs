use super::*;

fn every_moment() -> Vec<Moment> {
    let pages = [Page::Console, Page::History, Page::Host];
    (0..256u16 * 3)
        .map(|n| {
            let b = n % 256;
            Moment {
                page: pages[(n / 256) as usize],
                paused: b & 1 != 0,
                interrupted: b & 2 != 0,
                unfinished: b & 4 != 0,
                offered: b & 8 != 0,
                running: b & 16 != 0,
                can_roll_back: b & 32 != 0,
                change_ran: b & 64 != 0,
                on_hosts: b & 128 != 0,
            }
        })
        .collect()
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

fn console() -> Moment {
    Moment {
        can_roll_back: true,
        ..Moment::default()
    }
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
fn each_key_has_one_label_and_help_lists_every_key_once() {
    for a in BINDINGS {
        for b in BINDINGS
            .iter()
            .filter(|b| b.keys.iter().any(|k| a.keys.contains(k)))
        {
            assert_eq!(
                a.keys, b.keys,
                "{} and {} share a key",
                a.key_label, b.key_label
            );
            assert_eq!(a.key_label, b.key_label);
        }
    }
    for m in every_moment() {
        let listed = every_key(m);
        let labels: Vec<&str> = listed.iter().map(|b| b.key_label).collect();
        let mut unique = labels.clone();
        unique.dedup();
        assert_eq!(labels.len(), unique.len(), "{labels:?}");
        // Every key of the table is in it, and what holds is shown as such.
        for b in BINDINGS {
            assert!(labels.contains(&b.key_label), "{}", b.key_label);
            if b.holds(m) {
                assert!(listed.iter().any(|l| l.action == b.action), "{m:?}");
            }
        }
        for b in &listed {
            assert_eq!(b.holds(m), b.why_not(m).is_empty(), "{}", b.key_label);
        }
    }
}

#[test]
fn r_rolls_back_or_aborts_the_canary_and_n_p_only_hold_in_a_pause() {
    let idle = console();
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
fn r_holds_only_where_a_rollback_can_start_and_says_why_not() {
    let refused = Moment {
        can_roll_back: false,
        ..console()
    };
    assert_eq!(action_for(&key('R'), refused), None);
    let b = super::refused(&key('R'), refused).unwrap();
    assert_eq!(b.action, Action::Rollback);
    assert!(!b.why_not(refused).is_empty());
    // A key bound to nothing is refused by nothing.
    assert!(super::refused(&key('z'), refused).is_none());
}

#[test]
fn pages_read_and_only_the_console_changes_hosts() {
    for page in [Page::History, Page::Host] {
        let m = Moment { page, ..console() };
        for c in ['d', 'p', 'R', 'r', 'F', 'O'] {
            assert_eq!(action_for(&key(c), m), None, "{c} on {page:?}");
        }
        let esc = KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE);
        assert_eq!(action_for(&esc, m), Some(Action::Back));
        let tab = KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE);
        assert_eq!(action_for(&tab, m), Some(Action::NextEnv));
        assert_eq!(action_for(&key('H'), m), Some(Action::History));
    }
    // Enter opens the selected host, from the Environments pane only.
    let enter = KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE);
    assert_eq!(action_for(&enter, console()), None);
    let on_hosts = Moment {
        on_hosts: true,
        ..console()
    };
    assert_eq!(action_for(&enter, on_hosts), Some(Action::OpenHost));
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
    let idle = console();
    for c in ['r', 'F', 'O'] {
        assert_eq!(action_for(&key(c), idle), None, "{c}");
    }
    let all = Moment {
        interrupted: true,
        unfinished: true,
        offered: true,
        ..idle
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
        PageUp,
        PageDown,
        Top,
        Bottom,
        NextPane,
        PrevPane,
        NextEnv,
        PrevEnv,
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
        History,
        OpenHost,
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
