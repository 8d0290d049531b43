use std::path::Path;

use crossterm::event::KeyModifiers;

use super::*;
use crate::engine::canary::Verdict;
use crate::engine::{ChangeKind, ChangeOutcome};
use crate::model::ReleaseId;

const CONFIG: &str = r#"
[app]
name = "hello"
artifact = "dist"
deploy_to = "/srv/hello"

[environments.staging]
hosts = ["local:hosts/stage-1"]

[environments.production]
hosts = ["local:hosts/web-1", "local:hosts/web-2", "local:hosts/web-3"]
strategy = { kind = "canary", steps = ["1", "pause 60s", "2", "pause", "100%"] }
"#;

fn app(readonly: bool) -> App {
    let config = Config::parse(Path::new("/t/shipdeck.toml"), CONFIG).unwrap();
    let mut app = App::new(Arc::new(config), readonly);
    app.now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    app
}

fn press(app: &mut App, c: char) -> Vec<Effect> {
    app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char(c),
        KeyModifiers::NONE,
    )))
}

fn start(app: &mut App, kind: ChangeKind) {
    app.update(Msg::Engine(Event::ChangeStarted {
        change: "c1".into(),
        env: "production".into(),
        kind,
        release: Some(ReleaseId::parse("v2").unwrap()),
        hosts: vec!["web-1".into(), "web-2".into(), "web-3".into()],
    }));
}

fn pause(app: &mut App, batch: usize, wait: Option<Duration>) {
    app.update(Msg::Engine(Event::Paused {
        batch,
        of: 3,
        canary: (0..=batch).collect(),
        wait,
        why: None,
    }));
}

/// A refusal to roll `production` back across a schema migration.
fn refuse(app: &mut App) {
    app.update(Msg::ChangeDone(Err(ChangeError::Migration(
        "rollback of production refused, nothing was changed: it crosses the schema migration of v2 (run_once_migrates)".into(),
    ))));
}

#[test]
fn strategies_read_shortly() {
    let a = app(false);
    assert_eq!(a.envs[0].strategy, "all at once");
    assert_eq!(a.envs[1].strategy, "canary 1 → 2 → 100%");
}

#[test]
fn n_p_r_steer_the_change_only_while_it_is_paused() {
    let mut a = app(false);
    a.env_cursor = 1;
    start(&mut a, ChangeKind::Deploy);
    // Running, not paused: n and P mean nothing, R refuses to roll back.
    assert!(press(&mut a, 'n').is_empty());
    assert!(press(&mut a, 'P').is_empty());
    assert!(press(&mut a, 'R').is_empty());
    pause(&mut a, 0, Some(Duration::from_secs(60)));
    assert_eq!(
        press(&mut a, 'n'),
        [Effect::Control {
            batch: 0,
            word: Control::Next
        }]
    );
    // One word per pause: a second n must not skip the next pause.
    assert!(press(&mut a, 'n').is_empty());
    assert!(press(&mut a, 'P').is_empty());
    // The same pause sent again (now waiting for the operator) keeps it.
    pause(&mut a, 0, None);
    assert!(press(&mut a, 'n').is_empty());
    // Abort may still follow, once.
    assert_eq!(
        press(&mut a, 'R'),
        [Effect::Control {
            batch: 0,
            word: Control::Abort
        }]
    );
    assert!(press(&mut a, 'R').is_empty());

    let mut a = app(false);
    start(&mut a, ChangeKind::Deploy);
    pause(&mut a, 0, None);
    assert_eq!(
        press(&mut a, 'P'),
        [Effect::Control {
            batch: 0,
            word: Control::Promote
        }]
    );
    a.update(Msg::Engine(Event::Continued {
        by: "the console".into(),
        control: Control::Promote,
    }));
    assert!(a.paused().is_none());
    assert!(press(&mut a, 'P').is_empty());
    assert!(press(&mut a, 'n').is_empty());
    // A new pause takes a word again.
    pause(&mut a, 1, None);
    assert_eq!(
        press(&mut a, 'n'),
        [Effect::Control {
            batch: 1,
            word: Control::Next
        }]
    );
    // Once finished, R is the rollback of the environment again.
    a.update(Msg::Engine(Event::ChangeFinished {
        change: "c1".into(),
        outcome: ChangeOutcome::Succeeded,
        summary: "done".into(),
    }));
    assert!(press(&mut a, 'n').is_empty());
    assert_eq!(press(&mut a, 'R'), [Effect::rollback("production", false)]);
}

fn key(a: &mut App, code: KeyCode) -> Vec<Effect> {
    a.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

#[test]
fn esc_closes_clears_and_goes_back_but_never_cancels() {
    let mut a = app(false);
    start(&mut a, ChangeKind::Deploy);
    assert!(key(&mut a, KeyCode::Esc).is_empty());
    // `?` Esc Esc: the help closes, then Esc again is only Esc.
    assert!(press(&mut a, '?').is_empty());
    assert_eq!(a.overlay, Overlay::Help);
    assert!(key(&mut a, KeyCode::Esc).is_empty());
    assert_eq!(a.overlay, Overlay::None);
    assert!(key(&mut a, KeyCode::Esc).is_empty());
    // In a pause too, and in the question `q` asks.
    pause(&mut a, 0, None);
    assert!(key(&mut a, KeyCode::Esc).is_empty());
    assert!(press(&mut a, 'q').is_empty());
    assert!(key(&mut a, KeyCode::Esc).is_empty());
    assert!(!a.quitting);
    assert!(a.change_running() && a.paused().is_some());
    // What Esc does: clear the log filter.
    a.logs.filter = Some("ERROR".into());
    assert!(key(&mut a, KeyCode::Esc).is_empty());
    assert_eq!(a.logs.filter, None);
}

#[test]
fn c_cancels_only_after_y() {
    let mut a = app(false);
    // Nothing running: c means nothing.
    assert!(press(&mut a, 'c').is_empty());
    assert_eq!(a.overlay, Overlay::None);
    start(&mut a, ChangeKind::Deploy);
    assert!(press(&mut a, 'c').is_empty());
    assert_eq!(a.overlay, Overlay::ConfirmCancel);
    // Any key but y leaves it running: n, Esc, c again, q.
    for code in [
        KeyCode::Char('n'),
        KeyCode::Esc,
        KeyCode::Char('c'),
        KeyCode::Char('q'),
    ] {
        assert_eq!(a.overlay, Overlay::ConfirmCancel);
        assert!(key(&mut a, code).is_empty(), "{code:?}");
        assert_eq!(a.overlay, Overlay::None);
        assert!(a.status.as_ref().unwrap().0.contains("not cancelled"));
        press(&mut a, 'c');
    }
    assert_eq!(press(&mut a, 'y'), [Effect::Cancel]);
    assert!(
        a.status
            .as_ref()
            .unwrap()
            .0
            .starts_with("CANCELLING deploy v2 → production")
    );
    // The question outlived the change: y cancels nothing.
    let mut a = app(false);
    start(&mut a, ChangeKind::Deploy);
    press(&mut a, 'c');
    a.update(Msg::Engine(Event::ChangeFinished {
        change: "c1".into(),
        outcome: ChangeOutcome::Succeeded,
        summary: "done".into(),
    }));
    assert!(press(&mut a, 'y').is_empty());
    // Read-only: no question at all.
    let mut a = app(true);
    start(&mut a, ChangeKind::Deploy);
    assert!(press(&mut a, 'c').is_empty());
    assert_eq!(a.overlay, Overlay::None);
}

#[test]
fn r_n_p_act_on_the_selected_environment_only() {
    let mut a = app(false);
    a.env_cursor = 1;
    start(&mut a, ChangeKind::Deploy);
    pause(&mut a, 0, None);
    // Staging selected: R is staging's rollback, refused while
    // production's canary runs; n and P steer nothing.
    a.env_cursor = 0;
    assert!(press(&mut a, 'R').is_empty());
    let (text, _) = a.status.clone().unwrap();
    assert!(
        text.starts_with("staging not rolled back: deploy v2 → production is running"),
        "{text}"
    );
    for c in ['n', 'P'] {
        assert!(press(&mut a, c).is_empty(), "{c}");
        let (text, _) = a.status.clone().unwrap();
        assert_eq!(
            text,
            format!("{c}: only while a canary of the selected environment is paused")
        );
    }
    assert_eq!(a.paused().unwrap().sent, None, "the canary heard nothing");
    assert_eq!(a.cancel_hint().as_deref(), Some("cancel production"));
    assert_eq!(a.rollback_hint(), None, "R is refused: not offered");
    // c still cancels production's change, naming it, after y.
    press(&mut a, 'c');
    assert_eq!(press(&mut a, 'y'), [Effect::Cancel]);
    // Production selected: R aborts its canary.
    let mut a = app(false);
    a.env_cursor = 1;
    start(&mut a, ChangeKind::Deploy);
    pause(&mut a, 0, None);
    assert_eq!(a.cancel_hint().as_deref(), Some("cancel"));
    assert_eq!(
        press(&mut a, 'R'),
        [Effect::Control {
            batch: 0,
            word: Control::Abort
        }]
    );
    // Once it ended, R on staging rolls staging back.
    a.update(Msg::Engine(Event::ChangeFinished {
        change: "c1".into(),
        outcome: ChangeOutcome::RolledBack,
        summary: "aborted".into(),
    }));
    a.env_cursor = 0;
    assert_eq!(a.rollback_hint().as_deref(), Some("roll back staging"));
    assert_eq!(press(&mut a, 'R'), [Effect::rollback("staging", false)]);
}

#[test]
fn a_breach_stays_on_the_finished_change() {
    let mut a = app(false);
    start(&mut a, ChangeKind::Deploy);
    pause(&mut a, 0, Some(Duration::from_secs(60)));
    a.update(Msg::Engine(Event::Analysis {
        verdict: Verdict::Inconclusive { why: "x".into() },
        lines: Vec::new(),
    }));
    // A new pause forgets the analysis of the one before.
    pause(&mut a, 1, None);
    assert!(a.change.as_ref().unwrap().analysis.is_none());
    a.update(Msg::Engine(Event::Analysis {
        verdict: Verdict::Breach {
            metric: crate::engine::canary::Metric::ErrorRate,
            value: 0.2,
            threshold: 0.01,
            host: Some("web-1".into()),
            detail: String::new(),
        },
        lines: vec!["ERROR boom".into()],
    }));
    a.update(Msg::Engine(Event::ChangeFinished {
        change: "c1".into(),
        outcome: ChangeOutcome::RolledBack,
        summary: "stopped".into(),
    }));
    let c = a.change.as_ref().unwrap();
    assert!(c.paused().is_none() && c.pause.is_none());
    assert_eq!(c.analysis.as_ref().unwrap().lines, ["ERROR boom"]);
}

#[test]
fn r_twice_rolls_back_across_a_migration() {
    let mut a = app(false);
    a.env_cursor = 1;
    let first = Effect::rollback("production", false);
    assert_eq!(press(&mut a, 'R'), std::slice::from_ref(&first));
    refuse(&mut a);
    assert!(a.armed().is_some());
    assert!(a.needs_clock(), "the armed R counts down");
    a.now += Duration::from_secs(9);
    assert_eq!(press(&mut a, 'R'), [Effect::rollback("production", true)]);
    assert!(a.armed.is_none());

    // Too late: a plain rollback again (which may be refused again).
    press(&mut a, 'R');
    refuse(&mut a);
    a.now += FORCE_WINDOW;
    a.update(Msg::Tick);
    assert!(a.armed.is_none());
    assert!(!a.needs_clock());
    assert_eq!(press(&mut a, 'R'), std::slice::from_ref(&first));

    // Anything else disarms: another key, or R on another environment.
    refuse(&mut a);
    press(&mut a, 'j');
    a.env_cursor = 1;
    assert_eq!(press(&mut a, 'R'), std::slice::from_ref(&first));
    refuse(&mut a);
    a.env_cursor = 0;
    assert_eq!(press(&mut a, 'R'), [Effect::rollback("staging", false)]);
    // Another error never arms.
    a.update(Msg::ChangeDone(Err(ChangeError::Other("locked".into()))));
    assert!(a.armed.is_none());
}

#[test]
fn a_terminal_too_small_to_show_what_a_key_does_changes_nothing() {
    let mut a = app(false);
    a.env_cursor = 1;
    a.update(Msg::Resize(80, 11));
    assert!(a.too_small());
    for c in ['R', 'd', 'p'] {
        assert!(press(&mut a, c).is_empty(), "{c}");
    }
    // Quitting still works (and asks while a change runs).
    assert_eq!(press(&mut a, 'q'), [Effect::Quit]);
    a.update(Msg::Resize(80, 24));
    assert_eq!(press(&mut a, 'R'), [Effect::rollback("production", false)]);
}

#[test]
fn a_readonly_console_sends_nothing() {
    let mut a = app(true);
    a.env_cursor = 1;
    start(&mut a, ChangeKind::Deploy);
    pause(&mut a, 0, None);
    for c in ['n', 'P', 'R', 'd', 'p', 'c'] {
        assert!(press(&mut a, c).is_empty(), "{c}");
    }
    a.update(Msg::Engine(Event::ChangeFinished {
        change: "c1".into(),
        outcome: ChangeOutcome::Succeeded,
        summary: "done".into(),
    }));
    assert!(press(&mut a, 'R').is_empty());
    assert!(a.armed.is_none());
}

#[test]
fn pages_only_read_and_esc_goes_back() {
    use crate::tui::keymap::{BINDINGS, Page};
    let mut a = app(false);
    a.env_cursor = 1;
    // Enter: the selected host; H: the history; Esc: back to the console.
    assert!(key(&mut a, KeyCode::Enter).is_empty());
    assert_eq!(a.page, Page::Host);
    assert!(press(&mut a, 'H').is_empty());
    assert_eq!(a.page, Page::History);
    assert!(press(&mut a, 'H').is_empty());
    assert_eq!(a.page, Page::Console);
    for page in [Page::History, Page::Host] {
        // No key changes a host from a page; each says where it would.
        for b in BINDINGS
            .iter()
            .filter(|b| b.changes_hosts && b.action != Action::Cancel)
        {
            a.page = page;
            for code in b.keys {
                assert!(key(&mut a, *code).is_empty(), "{} on {page:?}", b.key_label);
            }
            let (said, _) = a.status.clone().unwrap();
            assert!(said.contains("on the console only"), "{said}");
        }
        a.page = page;
        assert!(key(&mut a, KeyCode::Esc).is_empty());
        assert_eq!(a.page, Page::Console);
    }
    // Enter means a host only where hosts are: not from the logs.
    a.focus = Pane::Logs;
    assert!(key(&mut a, KeyCode::Enter).is_empty());
    assert_eq!(a.page, Page::Console);
    assert!(
        a.status
            .as_ref()
            .unwrap()
            .0
            .starts_with("Enter: with a host selected")
    );
}

#[test]
fn o_shows_the_output_only_once_a_change_ran() {
    let mut a = app(false);
    assert!(press(&mut a, 'o').is_empty());
    assert_eq!(a.overlay, Overlay::None);
    assert!(a.status.as_ref().unwrap().0.contains("no change has run"));
    start(&mut a, ChangeKind::Deploy);
    press(&mut a, 'o');
    assert_eq!(a.overlay, Overlay::Output);
}

#[test]
fn the_filter_applies_while_it_is_typed() {
    let mut a = app(false);
    press(&mut a, '/');
    for c in "err".chars() {
        press(&mut a, c);
    }
    assert_eq!(a.log_filter(), Some("err"));
    assert_eq!(a.logs.filter, None, "kept only with Enter");
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.logs.filter.as_deref(), Some("err"));
    press(&mut a, '/');
    key(&mut a, KeyCode::Backspace);
    assert_eq!(a.log_filter(), Some("er"));
    key(&mut a, KeyCode::Esc);
    assert_eq!(a.log_filter(), None);
    assert_eq!(a.logs.filter, None);
}
