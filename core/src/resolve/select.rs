//! Label selectors (`-l`), as kubectl reads them: `k=v`, `k==v`, `k!=v`, `k in (a,b)`,
//! `k notin (a,b)`, `k`, `!k`, joined by commas (all must hold).

use std::collections::BTreeMap;

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector.
#[derive(Debug, Clone, PartialEq)]
pub struct Selector(Vec<Requirement>);

impl Selector {
    /// Parses `-l`'s syntax; an error names the selector and says what is expected.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::invalid(format!(
                "invalid selector {s:?}: {why}; expected e.g. app=web, tier!=db, env in (a,b), !legacy"
            ))
        };
        let mut parts = Vec::new();
        let (mut depth, mut start) = (0i32, 0usize);
        for (i, c) in s.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(&s[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
            if depth < 0 {
                return Err(bad("unbalanced parentheses"));
            }
        }
        if depth != 0 {
            return Err(bad("unbalanced parentheses"));
        }
        parts.push(&s[start..]);
        let mut reqs = Vec::new();
        for part in parts.iter().map(|p| p.trim()) {
            if part.is_empty() {
                return Err(bad("empty requirement"));
            }
            let set = |rest: &str| -> Result<Vec<String>> {
                let inner = rest
                    .trim()
                    .strip_prefix('(')
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(|| bad("a set needs (…)"))?;
                Ok(inner.split(',').map(|v| v.trim().to_string()).collect())
            };
            let req = if let Some(key) = part.strip_prefix('!') {
                Requirement::NotExists(label_key(key.trim()).ok_or_else(|| bad("bad key"))?)
            } else if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotEquals(label_key(k.trim()).ok_or_else(|| bad("bad key"))?, v.trim().to_string())
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Requirement::Equals(label_key(k.trim()).ok_or_else(|| bad("bad key"))?, v.trim().to_string())
            } else if let Some((k, rest)) = part.split_once(" notin ") {
                Requirement::NotIn(label_key(k.trim()).ok_or_else(|| bad("bad key"))?, set(rest)?)
            } else if let Some((k, rest)) = part.split_once(" in ") {
                Requirement::In(label_key(k.trim()).ok_or_else(|| bad("bad key"))?, set(rest)?)
            } else {
                Requirement::Exists(label_key(part).ok_or_else(|| bad("bad key"))?)
            };
            reqs.push(req);
        }
        Ok(Selector(reqs))
    }

    /// Whether an object with `labels` is selected.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, set) => labels.get(k).is_some_and(|v| set.contains(v)),
            Requirement::NotIn(k, set) => labels.get(k).is_none_or(|v| !set.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
        })
    }
}

fn label_key(k: &str) -> Option<String> {
    let ok = !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    ok.then(|| k.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn selects_like_kubectl() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        assert!(Selector::parse("app=web").unwrap().matches(&l));
        assert!(Selector::parse("app==web,tier!=db").unwrap().matches(&l));
        assert!(Selector::parse("tier in (front, back)").unwrap().matches(&l));
        assert!(!Selector::parse("tier notin (front)").unwrap().matches(&l));
        assert!(Selector::parse("app,!legacy").unwrap().matches(&l));
        assert!(!Selector::parse("legacy").unwrap().matches(&l));
        assert!(Selector::parse("x notin (a)").unwrap().matches(&l));
        assert!(Selector::parse("app in (a").is_err());
        assert!(Selector::parse("a=b,,c").is_err());
    }
}
