//! Platforms (`linux/arm64/v8`, `windows/amd64:10.0.17763`): parsing the `--platform` syntax,
//! the JSON form used in configs and index entries, and upstream's matching rules.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// An image platform. Field order follows go-containerregistry's `v1.Platform`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(rename = "os.version", skip_serializing_if = "Option::is_none", default)]
    pub os_version: Option<String>,
    #[serde(rename = "os.features", skip_serializing_if = "Option::is_none", default)]
    pub os_features: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub variant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub features: Option<Vec<String>>,
}

impl Platform {
    /// `os/arch` with an optional variant.
    pub fn new(os: &str, arch: &str, variant: Option<&str>) -> Self {
        Platform {
            architecture: arch.to_string(),
            os: os.to_string(),
            os_version: None,
            os_features: None,
            variant: variant.map(str::to_string),
            features: None,
        }
    }

    /// Parses `os[/arch[/variant]][:osversion]`, as `--platform` and `defaultPlatforms` take it.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(format!(
                "invalid platform {s:?}: expected os[/arch[/variant]][:osversion], e.g. linux/arm64"
            ))
        };
        let (spec, os_version) = match s.split_once(':') {
            Some((p, v)) if !v.is_empty() => (p, Some(v.to_string())),
            Some(_) => return Err(bad()),
            None => (s, None),
        };
        let parts: Vec<&str> = spec.split('/').collect();
        if parts.len() > 3 || parts.iter().any(|p| p.is_empty() || p.contains(char::is_whitespace)) {
            return Err(bad());
        }
        let mut p = Platform::new(parts[0], parts.get(1).copied().unwrap_or(""), parts.get(2).copied());
        p.os_version = os_version;
        Ok(p)
    }

    /// Whether this platform (a base image's) satisfies `wanted` (a user's request): os and, where
    /// given, arch and variant must be equal; a Windows os version `X.Y.Z` matches `X.Y.Z.N`.
    pub fn satisfies(&self, wanted: &Platform) -> bool {
        if self.os != wanted.os {
            return false;
        }
        if !wanted.architecture.is_empty() && self.architecture != wanted.architecture {
            return false;
        }
        if wanted.variant.is_some() && self.variant != wanted.variant {
            return false;
        }
        match (&wanted.os_version, &self.os_version) {
            (None, _) => true,
            (Some(w), Some(have)) => have == w || have.starts_with(&format!("{w}.")),
            (Some(_), None) => false,
        }
    }

    /// Whether this is a placeholder platform (`unknown/unknown`, as buildx attestations carry).
    pub fn is_unknown(&self) -> bool {
        self.os == "unknown" || self.architecture == "unknown"
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.os)?;
        if !self.architecture.is_empty() {
            write!(f, "/{}", self.architecture)?;
        }
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        if let Some(v) = &self.os_version {
            write!(f, ":{v}")?;
        }
        Ok(())
    }
}

/// What platforms a build asks for: every platform the base offers, or a list.
#[derive(Debug, Clone, PartialEq)]
pub enum PlatformSelection {
    All,
    Only(Vec<Platform>),
}

impl PlatformSelection {
    /// Parses `--platform` values (each may be a comma list). `all` cannot be mixed with others.
    pub fn parse<S: AsRef<str>>(values: &[S]) -> Result<Self> {
        let items: Vec<&str> =
            values.iter().flat_map(|v| v.as_ref().split(',')).map(str::trim).filter(|s| !s.is_empty()).collect();
        if items.contains(&"all") {
            if items.len() > 1 {
                return Err(Error::invalid("`all` cannot be combined with other platforms"));
            }
            return Ok(PlatformSelection::All);
        }
        let mut platforms = Vec::new();
        for item in items {
            let p = Platform::parse(item)?;
            if !platforms.contains(&p) {
                platforms.push(p);
            }
        }
        if platforms.is_empty() {
            return Err(Error::invalid("no platform given (e.g. linux/amd64)"));
        }
        Ok(PlatformSelection::Only(platforms))
    }

    /// Whether a base's `platform` is wanted (unknown platforms never are).
    pub fn matches(&self, platform: &Platform) -> bool {
        if platform.is_unknown() {
            return false;
        }
        match self {
            PlatformSelection::All => true,
            PlatformSelection::Only(list) => list.iter().any(|w| platform.satisfies(w)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_platforms_with_variant_and_os_version() {
        let p = Platform::parse("linux/arm/v7").unwrap();
        assert_eq!((p.os.as_str(), p.architecture.as_str(), p.variant.as_deref()), ("linux", "arm", Some("v7")));
        let w = Platform::parse("windows/amd64:10.0.17763").unwrap();
        assert_eq!(w.os_version.as_deref(), Some("10.0.17763"));
        assert_eq!(w.to_string(), "windows/amd64:10.0.17763");
        assert!(Platform::parse("linux//x").is_err());
        assert!(Platform::parse("a/b/c/d").is_err());
    }

    #[test]
    fn matching_follows_upstream() {
        let sel = PlatformSelection::parse(&["linux/amd64,linux/arm64"]).unwrap();
        assert!(sel.matches(&Platform::new("linux", "arm64", Some("v8"))));
        assert!(!sel.matches(&Platform::new("linux", "arm", Some("v7"))));
        assert!(!PlatformSelection::All.matches(&Platform::new("unknown", "unknown", None)));
        let mut base = Platform::new("windows", "amd64", None);
        base.os_version = Some("10.0.17763.1234".into());
        assert!(base.satisfies(&Platform::parse("windows/amd64:10.0.17763").unwrap()));
        assert!(PlatformSelection::parse(&["all", "linux/amd64"]).is_err());
    }
}
