use std::fmt;
use std::time::Duration;

use crate::model::canary::{CanaryStep, Thresholds};

/// How many hosts: a count, or a percentage of the environment (rounded up, at least one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostCount {
    Count(usize),
    Percent(u8),
}

impl HostCount {
    pub fn of(self, total: usize) -> usize {
        let n = match self {
            HostCount::Count(n) => n,
            HostCount::Percent(p) => (total * p as usize).div_ceil(100),
        };
        n.clamp(1, total.max(1))
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some(p) = s.strip_suffix('%') {
            match p.trim().parse::<u8>() {
                Ok(p @ 1..=100) => Ok(HostCount::Percent(p)),
                _ => Err(format!("{s:?} is not a percentage from 1% to 100%")),
            }
        } else {
            match s.parse::<usize>() {
                Ok(n) if n > 0 => Ok(HostCount::Count(n)),
                _ => Err(format!(
                    "{s:?} is not a host count (a whole number above 0, or a percentage like \"25%\")"
                )),
            }
        }
    }
}

impl fmt::Display for HostCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostCount::Count(n) => write!(f, "{n}"),
            HostCount::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// How a change moves through an environment's hosts.
#[derive(Debug, Clone, PartialEq)]
pub enum Strategy {
    /// Every host at once.
    AllAtOnce,
    /// Batches of `batch` hosts; the change stops, and every switched host goes
    /// back, once more than `max_failures` hosts have failed.
    Rolling {
        batch: HostCount,
        max_failures: usize,
    },
    /// Hosts move in steps, with pauses during which the canary hosts are
    /// judged against thresholds and against the hosts still on the old
    /// release; a breach puts the canary hosts back.
    Canary {
        steps: Vec<CanaryStep>,
        thresholds: Thresholds,
    },
    /// Two slots per host: the new release starts on the idle one, passes its
    /// gate there, then `switch` moves traffic.
    BlueGreen(BlueGreen),
}

/// The two slots of a blue/green host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    Blue,
    Green,
}

impl Slot {
    pub fn other(self) -> Slot {
        match self {
            Slot::Blue => Slot::Green,
            Slot::Green => Slot::Blue,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Slot::Blue => "blue",
            Slot::Green => "green",
        }
    }

    /// The host variable that overrides the strategy's port for this slot.
    pub fn port_var(self) -> &'static str {
        match self {
            Slot::Blue => "blue_port",
            Slot::Green => "green_port",
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BlueGreen {
    /// Moves traffic to the slot in `SHIPDECK_SLOT` (port `SHIPDECK_SLOT_PORT`).
    /// Run on each host in the release directory of the slot taking traffic.
    pub switch: String,
    /// Stops the slot in `SHIPDECK_SLOT` once a change is finished; without
    /// it, finishing only forgets the old slot.
    pub stop: Option<String>,
    /// Finish by itself this long after the switch; `None`: wait for
    /// `shipdeck finish ENV`.
    pub finish_after: Option<Duration>,
    /// Ports of the blue and the green slot, unless a host sets `blue_port`
    /// and `green_port` in its `vars`.
    pub ports: Option<[u16; 2]>,
}

impl Strategy {
    /// What a pause judges the hosts switched so far by: a canary's own
    /// thresholds, else the defaults.
    pub fn thresholds(&self) -> Thresholds {
        match self {
            Strategy::Canary { thresholds, .. } => thresholds.clone(),
            _ => Thresholds::default(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Strategy::AllAtOnce => "all-at-once",
            Strategy::Rolling { .. } => "rolling",
            Strategy::Canary { .. } => "canary",
            Strategy::BlueGreen(_) => "blue-green",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Strategy::AllAtOnce => f.write_str("all-at-once"),
            Strategy::Rolling {
                batch,
                max_failures,
            } => write!(f, "rolling (batch {batch}, max_failures {max_failures})"),
            Strategy::Canary { steps, .. } => {
                let steps: Vec<String> = steps.iter().map(ToString::to_string).collect();
                write!(f, "canary ({})", steps.join(", "))
            }
            Strategy::BlueGreen(bg) => match bg.finish_after {
                Some(d) => write!(
                    f,
                    "blue-green (finishes {} after the switch)",
                    super::time::written_duration(d)
                ),
                None => f.write_str("blue-green (finish with `shipdeck finish`)"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_up_and_never_reach_zero() {
        assert_eq!(HostCount::Percent(50).of(3), 2);
        assert_eq!(HostCount::Percent(1).of(3), 1);
        assert_eq!(HostCount::Percent(100).of(3), 3);
        assert_eq!(HostCount::Count(5).of(3), 3);
        assert_eq!(HostCount::Count(1).of(0), 1);
    }

    #[test]
    fn parses_counts_and_percentages() {
        assert_eq!(HostCount::parse("2"), Ok(HostCount::Count(2)));
        assert_eq!(HostCount::parse("25%"), Ok(HostCount::Percent(25)));
        assert!(HostCount::parse("0").is_err());
        assert!(HostCount::parse("0%").is_err());
        assert!(HostCount::parse("101%").is_err());
        assert!(HostCount::parse("two").is_err());
    }
}
