//! OpenSSH's host patterns (`ssh_config(5)`, PATTERNS): `*` and `?`
//! wildcards, comma or space separated lists, and `!` negation.

/// `*` matches any run of characters, `?` exactly one; case-insensitive,
/// as OpenSSH compares host names.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    // Iterative with one backtrack point: linear enough for host names and
    // never recursive on a hostile pattern.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// A list of patterns matches when one positive pattern matches and no
/// negated one does: a negated match rules the name out whatever else
/// matches, and a list of negations alone matches nothing.
pub fn list_matches<'a>(patterns: impl IntoIterator<Item = &'a str>, text: &str) -> bool {
    let mut matched = false;
    for pattern in patterns
        .into_iter()
        .flat_map(|p| p.split(','))
        .filter(|p| !p.is_empty())
    {
        match pattern.strip_prefix('!') {
            Some(negated) if wildcard(negated, text) => return false,
            Some(_) => {}
            None => matched |= wildcard(pattern, text),
        }
    }
    matched
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard("*", "anything"));
        assert!(wildcard("web*", "web1"));
        assert!(wildcard("web?", "web1"));
        assert!(!wildcard("web?", "web12"));
        assert!(wildcard("*.prod.example", "db.prod.example"));
        assert!(!wildcard("*.prod.example", "db.stage.example"));
        assert!(wildcard("W*B", "web"), "host names compare without case");
        assert!(wildcard("a*b*c", "aXXbYYc"));
        assert!(!wildcard("a*b*c", "aXXbYY"));
        assert!(wildcard("", ""));
        assert!(!wildcard("", "x"));
    }

    #[test]
    fn lists_and_negation() {
        assert!(list_matches(["web*", "db1"], "db1"));
        assert!(list_matches(["web*,db1"], "web3"));
        assert!(!list_matches(["web*", "!web2"], "web2"));
        assert!(list_matches(["web*", "!web2"], "web3"));
        // Negation wins whatever the order.
        assert!(!list_matches(["!web2", "*"], "web2"));
        // Negations alone never match.
        assert!(!list_matches(["!web2"], "db1"));
        assert!(!list_matches([], "db1"));
    }
}
