//! Durations as operators write them: `"30s"`, `"2m"`, `"1h 30m"`, `"250ms"`.

use std::time::Duration;

use serde::Deserialize;

/// A duration read from the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

pub fn parse(s: &str) -> Result<Duration, String> {
    let d = crate::model::time::parse_duration(s)?;
    if d.is_zero() {
        return Err(format!("{s:?}: a duration must be above zero"));
    }
    Ok(d)
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
    fn reads_the_forms_operators_write() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("1h 30m"), Ok(Duration::from_secs(5400)));
        assert!(parse("30").is_err());
        assert!(parse("0s").is_err());
        assert!(parse("soon").is_err());
    }
}
