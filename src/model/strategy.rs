use std::fmt;

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
}

impl Strategy {
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::AllAtOnce => "all-at-once",
            Strategy::Rolling { .. } => "rolling",
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
