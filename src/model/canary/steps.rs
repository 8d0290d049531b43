//! Canary steps as an operator writes them (`["1", "pause 60s", "50%",
//! "pause", "100%"]`), and what each step moves.

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use crate::model::HostCount;
use crate::model::time::parse_duration;

/// What follows a move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseKind {
    /// Analysis runs this long, then the next step starts by itself.
    Timed(Duration),
    /// Analysis runs until the operator continues (or a breach ends it).
    Operator,
}

impl PauseKind {
    /// When a pause that started at `started` goes on by itself, if it does.
    pub fn deadline(self, started: std::time::Instant) -> Option<std::time::Instant> {
        match self {
            PauseKind::Timed(d) => Some(started + d),
            PauseKind::Operator => None,
        }
    }
}

/// One step as written in `strategy.steps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CanaryStep {
    /// Switch hosts until this many run the new release (cumulative, not
    /// "this many more"), as Argo Rollouts' `setWeight` is.
    Move(HostCount),
    Pause(PauseKind),
}

impl CanaryStep {
    pub fn parse(s: &str) -> Result<CanaryStep, String> {
        let s = s.trim();
        let (word, rest) = s.split_once(char::is_whitespace).unwrap_or((s, ""));
        if word.eq_ignore_ascii_case("pause") {
            return match rest.trim() {
                "" => Ok(CanaryStep::Pause(PauseKind::Operator)),
                d => parse_duration(d).map(|d| CanaryStep::Pause(PauseKind::Timed(d))),
            };
        }
        if word.to_ascii_lowercase().starts_with("paus") {
            return Err(format!(
                "{s:?} is not a pause (write \"pause\" to wait for the operator, or \"pause 60s\")"
            ));
        }
        HostCount::parse(s).map(CanaryStep::Move).map_err(|e| {
            format!(
                "{e}; a step is a count (\"1\"), a percentage (\"25%\"), \"pause 60s\" or \"pause\""
            )
        })
    }

    fn is_all(self) -> bool {
        self == CanaryStep::Move(HostCount::Percent(100))
    }
}

impl fmt::Display for CanaryStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CanaryStep::Move(n) => write!(f, "{n}"),
            CanaryStep::Pause(PauseKind::Timed(d)) => {
                write!(f, "pause {}", crate::model::time::written_duration(*d))
            }
            CanaryStep::Pause(PauseKind::Operator) => f.write_str("pause"),
        }
    }
}

/// Reads `strategy.steps`. The rules keep a canary meaningful: it starts with
/// a move (a pause before it has nothing to watch), moves never shrink, and it
/// ends with `"100%"` and nothing after it (a pause there has no baseline left,
/// and a count would leave hosts behind once the environment grows).
pub fn parse_steps<S: AsRef<str>>(steps: &[S]) -> Result<Vec<CanaryStep>, String> {
    let parsed = steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            CanaryStep::parse(s.as_ref())
                .map_err(|e| format!("canary step {} ({:?}): {e}", i + 1, s.as_ref()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let written = |i: usize| steps[i].as_ref().trim();

    let Some(first) = parsed.first() else {
        return Err(
            "canary steps are empty: write at least one move ending with \"100%\", e.g. [\"1\", \"pause 60s\", \"100%\"]"
                .to_owned(),
        );
    };
    if let CanaryStep::Pause(_) = first {
        return Err(format!(
            "canary step 1 ({:?}) pauses before any host has moved: start with a count (\"1\") or a percentage (\"25%\")",
            written(0)
        ));
    }

    let mut last_count: Option<(usize, usize)> = None;
    let mut last_percent: Option<(usize, u8)> = None;
    let mut all_at: Option<usize> = None;
    for (i, step) in parsed.iter().enumerate() {
        if let Some(at) = all_at {
            return Err(format!(
                "canary step {} ({:?}) comes after step {} (\"100%\") has moved every host: nothing is left on the old release to move or compare with",
                i + 1,
                written(i),
                at + 1
            ));
        }
        match *step {
            CanaryStep::Move(HostCount::Count(n)) => {
                if let Some((j, _)) = last_count.filter(|&(_, prev)| n < prev) {
                    return Err(shrinks(i, written(i), j, written(j)));
                }
                last_count = Some((i, n));
            }
            CanaryStep::Move(HostCount::Percent(p)) => {
                if let Some((j, _)) = last_percent.filter(|&(_, prev)| p < prev) {
                    return Err(shrinks(i, written(i), j, written(j)));
                }
                last_percent = Some((i, p));
            }
            CanaryStep::Pause(_) => {}
        }
        if step.is_all() {
            all_at = Some(i);
        }
    }
    if all_at.is_none() {
        let (i, _) = parsed
            .iter()
            .enumerate()
            .rfind(|(_, s)| matches!(s, CanaryStep::Move(_)))
            .unwrap_or((0, first));
        return Err(format!(
            "the last canary move, step {} ({:?}), does not reach 100%: end the steps with \"100%\" so that every host gets the release",
            i + 1,
            written(i)
        ));
    }
    Ok(parsed)
}

fn shrinks(i: usize, s: &str, j: usize, prev_s: &str) -> String {
    format!(
        "canary step {} ({s:?}) moves fewer hosts than step {} ({prev_s:?}): steps give the new release to more hosts, never fewer",
        i + 1,
        j + 1
    )
}

/// One switch of a canary and the pauses after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Hosts on the new release once this stage has switched (cumulative).
    pub switched: usize,
    /// Positions in the change's host order that switch in this stage; empty
    /// when an earlier step already reached this step's target on an
    /// environment this small, in which case only the pauses remain.
    pub hosts: Range<usize>,
    /// Run in order after the switch; the analysis watches each one.
    pub pauses: Vec<PauseKind>,
}

/// What each step does on an environment of `total_hosts` hosts. A count and
/// a percentage can disagree (`"3"` then `"25%"` of 4 hosts), so targets are
/// held to never go down; a stage that neither moves a host nor pauses is
/// left out. With steps from [`parse_steps`], the last stage switches every
/// host.
pub fn moves(steps: &[CanaryStep], total_hosts: usize) -> Vec<Stage> {
    let mut stages: Vec<Stage> = Vec::new();
    if total_hosts == 0 {
        return stages;
    }
    let mut switched = 0;
    for step in steps {
        match *step {
            CanaryStep::Move(n) => {
                let target = n.of(total_hosts).max(switched);
                stages.push(Stage {
                    switched: target,
                    hosts: switched..target,
                    pauses: Vec::new(),
                });
                switched = target;
            }
            CanaryStep::Pause(kind) => {
                if let Some(stage) = stages.last_mut() {
                    stage.pauses.push(kind);
                }
            }
        }
    }
    stages.retain(|s| !s.hosts.is_empty() || !s.pauses.is_empty());
    stages
}
