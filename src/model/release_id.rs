use std::fmt;

/// A release id: `[A-Za-z0-9._-]{1,64}`, and not `.` or `..`.
///
/// This is the one type that names a release anywhere in the program, so an id
/// that could reach a shell or escape `releases/` cannot exist past parsing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct ReleaseId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid release id {shown}: {why} (allowed: 1 to 64 of A-Z a-z 0-9 . _ -)")]
pub struct ReleaseIdError {
    shown: String,
    why: &'static str,
}

pub const MAX_RELEASE_ID_LEN: usize = 64;

impl ReleaseId {
    pub fn parse(s: &str) -> Result<Self, ReleaseIdError> {
        let err = |why| ReleaseIdError {
            shown: format!("{s:?}"),
            why,
        };
        if s.is_empty() {
            return Err(err("it is empty"));
        }
        if s.len() > MAX_RELEASE_ID_LEN {
            return Err(err("it is longer than 64 characters"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(err("it contains a character outside the allowed set"));
        }
        if s == "." || s == ".." {
            return Err(err("it names a directory, not a release"));
        }
        if s.starts_with('.') {
            // Hidden names are where unpacking happens, never a release.
            return Err(err("it starts with a dot"));
        }
        if s.starts_with('-') {
            // Would read as an option to the commands it is passed to.
            return Err(err("it starts with a dash"));
        }
        Ok(ReleaseId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ReleaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for ReleaseId {
    type Err = ReleaseIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ReleaseId::parse(s)
    }
}

impl<'de> serde::Deserialize<'de> for ReleaseId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ReleaseId::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_capistrano_and_semver_ids() {
        for ok in ["v1", "20261122031500", "1.2.3-rc.1", "a_b", &"x".repeat(64)] {
            assert_eq!(ReleaseId::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn refuses_anything_that_could_reach_a_shell_or_a_path() {
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "-rf",
            "v1;rm -rf /",
            "$(id)",
            "`id`",
            "a b",
            "a/b",
            "../etc",
            "v1\n",
            "é",
            "a'b",
            &"x".repeat(65),
        ] {
            assert!(ReleaseId::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn error_names_the_id_and_the_rule() {
        let e = ReleaseId::parse("v1;reboot").unwrap_err().to_string();
        assert!(e.contains("\"v1;reboot\""), "{e}");
        assert!(e.contains("A-Z a-z 0-9 . _ -"), "{e}");
    }
}
