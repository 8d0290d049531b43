//! Durations as operators write them: `"30s"`, `"2m"`, `"1h 30m"`, `"250ms"`.

use std::time::Duration;

use serde::Deserialize;

/// A duration read from the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

pub fn parse(s: &str) -> Result<Duration, String> {
    crate::model::time::parse_duration(s)
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map(Dur).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duration_in_the_config_is_above_zero() {
        assert_eq!(parse("1h 30m"), Ok(Duration::from_secs(5400)));
        let e = parse("0s").unwrap_err();
        assert!(e.contains("above zero"), "{e}");
        assert!(parse("30").is_err());
    }
}
