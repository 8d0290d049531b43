//! Steps as written, and what each moves.

use super::*;

#[test]
fn parses_each_kind_of_step() {
    assert_eq!(
        steps(&["1", "pause 60s", "25%", "pause", " 100% "]),
        Ok(vec![
            CanaryStep::Move(HostCount::Count(1)),
            CanaryStep::Pause(PauseKind::Timed(Duration::from_secs(60))),
            CanaryStep::Move(HostCount::Percent(25)),
            CanaryStep::Pause(PauseKind::Operator),
            CanaryStep::Move(HostCount::Percent(100)),
        ])
    );
    assert_eq!(
        steps(&["1", "pause 1h 30m", "100%"]).map(|s| s[1]),
        Ok(CanaryStep::Pause(PauseKind::Timed(Duration::from_secs(
            5400
        ))))
    );
    assert_eq!(steps(&["100%"]).map(|s| s.len()), Ok(1));
}

#[test]
fn steps_print_as_written() {
    let shown: Vec<String> = steps(&["1", "pause 60s", "50%", "pause", "100%"])
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(shown, ["1", "pause 1m", "50%", "pause", "100%"]);
}

#[test]
fn bad_steps_say_which_and_why() {
    let err = |s: &[&str]| steps(s).unwrap_err();
    let e = err(&["1", "pause soon", "100%"]);
    assert!(e.starts_with("canary step 2 (\"pause soon\"): "), "{e}");
    assert!(e.contains("not a duration"), "{e}");
    let e = err(&["1", "pause 0s", "100%"]);
    assert!(e.contains("step 2") && e.contains("above zero"), "{e}");
    assert_eq!(
        CanaryStep::parse("Pause 30s"),
        Ok(CanaryStep::Pause(PauseKind::Timed(Duration::from_secs(30))))
    );
    let e = err(&["1", "pause60s", "100%"]);
    assert!(e.contains("step 2") && e.contains("not a pause"), "{e}");
    let e = err(&["1", "paus", "100%"]);
    assert!(e.contains("step 2") && e.contains("not a pause"), "{e}");
    let e = err(&["1", "half", "100%"]);
    assert!(
        e.contains("step 2 (\"half\")") && e.contains("\"pause 60s\""),
        "{e}"
    );
    let e = err(&["0", "100%"]);
    assert!(e.contains("step 1 (\"0\")"), "{e}");
    let e = err(&["1", "150%"]);
    assert!(e.contains("step 2 (\"150%\")"), "{e}");
}

#[test]
fn steps_must_move_first_only_forward_and_end_at_all() {
    let err = |s: &[&str]| steps(s).unwrap_err();
    assert!(err(&[]).contains("empty"));
    let e = err(&["pause 30s", "100%"]);
    assert!(
        e.contains("step 1") && e.contains("before any host has moved"),
        "{e}"
    );
    let e = err(&["pause"]);
    assert!(e.contains("before any host has moved"), "{e}");
    let e = err(&["50%", "pause", "25%", "100%"]);
    assert!(
        e.contains("step 3 (\"25%\") moves fewer hosts than step 1 (\"50%\")"),
        "{e}"
    );
    let e = err(&["3", "pause", "2", "100%"]);
    assert!(
        e.contains("step 3 (\"2\") moves fewer hosts than step 1 (\"3\")"),
        "{e}"
    );
    let e = err(&["1", "pause 60s", "50%"]);
    assert!(e.contains("step 3 (\"50%\"), does not reach 100%"), "{e}");
    let e = err(&["1", "pause", "4"]);
    assert!(e.contains("step 3 (\"4\"), does not reach 100%"), "{e}");
    let e = err(&["1", "100%", "pause 60s"]);
    assert!(
        e.contains("step 3 (\"pause 60s\") comes after step 2"),
        "{e}"
    );
    let e = err(&["1", "100%", "100%"]);
    assert!(e.contains("step 3"), "{e}");
    // A count and a percentage cannot be compared before the host count
    // is known; `moves` keeps such targets from going down.
    assert!(steps(&["3", "pause", "25%", "100%"]).is_ok());
    // Repeating a target is allowed: it is a longer watch, not a step back.
    assert!(steps(&["25%", "pause 1m", "25%", "pause", "100%"]).is_ok());
}

#[test]
fn moves_four_hosts_step_by_step() {
    let s = steps(&["1", "pause 60s", "50%", "pause", "100%"]).unwrap();
    assert_eq!(
        moves(&s, 4),
        vec![
            Stage {
                switched: 1,
                hosts: 0..1,
                pauses: vec![PauseKind::Timed(Duration::from_secs(60))],
            },
            Stage {
                switched: 2,
                hosts: 1..2,
                pauses: vec![PauseKind::Operator],
            },
            Stage {
                switched: 4,
                hosts: 2..4,
                pauses: vec![],
            },
        ]
    );
}

#[test]
fn moves_never_go_down_and_keep_every_pause() {
    let s = steps(&["3", "pause 10s", "25%", "pause", "100%"]).unwrap();
    let m = moves(&s, 4);
    assert_eq!(m.len(), 3);
    assert_eq!((m[0].switched, m[0].hosts.clone()), (3, 0..3));
    // "25%" of 4 is 1: nothing moves, but the operator's pause still holds.
    assert_eq!((m[1].switched, m[1].hosts.clone()), (3, 3..3));
    assert_eq!(m[1].pauses, vec![PauseKind::Operator]);
    assert_eq!((m[2].switched, m[2].hosts.clone()), (4, 3..4));
}

#[test]
fn moves_on_small_and_empty_environments() {
    let s = steps(&["50%", "pause 1m", "pause", "100%"]).unwrap();
    let one = moves(&s, 1);
    // The "100%" stage moves nothing and does not pause: left out.
    assert_eq!(
        one,
        vec![Stage {
            switched: 1,
            hosts: 0..1,
            pauses: vec![
                PauseKind::Timed(Duration::from_secs(60)),
                PauseKind::Operator
            ],
        }]
    );
    assert!(moves(&s, 0).is_empty());
    let big = moves(&steps(&["10", "pause", "100%"]).unwrap(), 3);
    assert_eq!(big[0].switched, 3);
    assert_eq!(big.len(), 1);
}
