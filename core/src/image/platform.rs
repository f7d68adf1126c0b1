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
        if let Some(variant) = &p.variant {
            check_variant(&p.architecture, variant)
                .map_err(|why| Error::invalid(format!("invalid platform {s:?}: {why}")))?;
        }
        Ok(p)
    }

    /// The Go environment variable and value a variant of this platform's architecture sets
    /// (`GOARM=7` for arm/v7, `GOAMD64=v3`, `GOARM64=v8.2`), when it names one Go knows.
    pub fn go_variant(&self) -> Option<(&'static str, String)> {
        let v = self.variant.as_deref()?;
        match self.architecture.as_str() {
            "arm" => {
                let n: u32 = v.strip_prefix('v')?.parse().ok()?;
                // Upstream clamps what bases name (arm/v8 is 64-bit ARM's 32-bit mode) to GOARM's range.
                Some(("GOARM", n.clamp(5, 7).to_string()))
            }
            "amd64" => AMD64_VARIANTS.contains(&v).then(|| ("GOAMD64", v.to_string())),
            "arm64" => arm64_level(v).map(|level| ("GOARM64", level)),
            _ => None,
        }
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

/// `GOAMD64` levels.
const AMD64_VARIANTS: &[&str] = &["v1", "v2", "v3", "v4"];

/// `GOARM64`'s spelling of an arm64 variant: `v8` → `v8.0`, `v9.2` → `v9.2` (v8.0–v8.9, v9.0–v9.5).
fn arm64_level(v: &str) -> Option<String> {
    let (major, minor) = match v.split_once('.') {
        Some((major, minor)) => (major, minor.parse::<u32>().ok()?),
        None => (v, 0),
    };
    let max_minor = match major {
        "v8" => 9,
        "v9" => 5,
        _ => return None,
    };
    (minor <= max_minor && !v.ends_with('.')).then(|| format!("{major}.{minor}"))
}

/// Whether `variant` is one ko can build for `arch`; otherwise, why not (with what is valid):
/// a variant Go cannot build would give a binary labelled as something it is not.
fn check_variant(arch: &str, variant: &str) -> std::result::Result<(), String> {
    let valid = match arch {
        "arm" => ["v5", "v6", "v7"].contains(&variant),
        "amd64" => AMD64_VARIANTS.contains(&variant),
        "arm64" => arm64_level(variant).is_some(),
        _ => false,
    };
    if valid {
        return Ok(());
    }
    Err(match arch {
        "arm" => format!("arm variants are v5, v6 and v7 (GOARM), not {variant:?}; for 64-bit ARM use linux/arm64"),
        "amd64" => format!("amd64 variants are v1, v2, v3 and v4 (GOAMD64), not {variant:?}"),
        "arm64" => format!("arm64 variants are v8, v8.1 … v8.9, v9, v9.1 … v9.5 (GOARM64), not {variant:?}"),
        "" => "a variant needs an architecture (e.g. linux/arm/v7)".to_string(),
        other => {
            format!("{other} takes no variant (only arm, arm64 and amd64 have variants ko can build); drop {variant:?}")
        }
    })
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
    fn variants_are_ones_go_can_build() {
        for ok in
            ["linux/arm/v5", "linux/arm/v7", "linux/amd64/v3", "linux/arm64/v8", "linux/arm64/v9.5", "linux/arm64/v8.0"]
        {
            assert!(Platform::parse(ok).is_ok(), "{ok}");
        }
        for (bad, says) in [
            ("linux/arm/v9", "arm variants are v5, v6 and v7"),
            ("linux/arm/v8", "for 64-bit ARM use linux/arm64"),
            ("linux/amd64/v5", "amd64 variants are v1, v2, v3 and v4"),
            ("linux/arm64/v9.6", "arm64 variants are v8"),
            ("linux/arm64/v8.", "arm64 variants are v8"),
            ("linux/386/sse2", "386 takes no variant"),
        ] {
            let e = Platform::parse(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("invalid platform {bad:?}")) && e.contains(says), "{bad}: {e}");
        }
        let go = |p: &str| Platform::parse(p).unwrap().go_variant();
        assert_eq!(go("linux/arm/v6"), Some(("GOARM", "6".to_string())));
        assert_eq!(go("linux/amd64/v2"), Some(("GOAMD64", "v2".to_string())));
        assert_eq!(go("linux/arm64/v9"), Some(("GOARM64", "v9.0".to_string())));
        assert_eq!(go("linux/arm64"), None);
        // What a base names is built as upstream builds it: arm/v8 as GOARM=7.
        assert_eq!(Platform::new("linux", "arm", Some("v8")).go_variant(), Some(("GOARM", "7".to_string())));
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
