//! Parsing image references without compiling oci-client's reference regex, whose Unicode `\w`
//! under `{0,127}` takes about 50 ms to compile: more than a no-op rebuild costs `go` itself.
//! [`parse_reference`] reads the ASCII references people write with the distribution grammar
//! by hand and gives exactly what `Reference::from_str` gives; anything else (errors, Unicode
//! tags) goes to `Reference::from_str`, so messages and edge cases stay the crate's.

use std::str::FromStr;

use oci_client::{ParseError, Reference};

/// What `Reference::from_str(s)` returns, without its regex for the common case.
pub fn parse_reference(s: &str) -> Result<Reference, ParseError> {
    match read_plain(s) {
        Some(reference) => Ok(reference),
        None => Reference::from_str(s),
    }
}

/// Longest repository the crate accepts.
const NAME_MAX: usize = 255;
/// Longest tag, as the grammar's `[\w][\w.-]{0,127}`.
const TAG_MAX: usize = 128;

/// `s` read by the grammar, or `None` when it is not in the ASCII subset or not valid.
fn read_plain(s: &str) -> Option<Reference> {
    let (rest, digest) = match s.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (s, None),
    };
    if let Some(d) = digest
        && !is_digest(d)
    {
        return None;
    }
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].split_once(':') {
        Some((_, tag)) => (&rest[..rest.len() - tag.len() - 1], Some(tag)),
        None => (rest, None),
    };
    if let Some(t) = tag
        && !is_tag(t)
    {
        return None;
    }
    if !(is_path(name) || name.split_once('/').is_some_and(|(domain, path)| is_domain(domain) && is_path(path))) {
        return None;
    }
    let (registry, repository) = split_domain(name);
    if repository.len() > NAME_MAX {
        return None;
    }
    Some(match (tag, digest) {
        (Some(t), Some(d)) => Reference::with_tag_and_digest(registry, repository, t.into(), d.into()),
        (None, Some(d)) => Reference::with_digest(registry, repository, d.into()),
        (t, None) => Reference::with_tag(registry, repository, t.unwrap_or("latest").into()),
    })
}

/// The registry and repository of a name, as Docker (and the crate) split it: the first
/// component is a registry when it has a `.` or `:` or is `localhost`; Docker Hub's official
/// images are under `library/`.
fn split_domain(name: &str) -> (String, String) {
    let (mut registry, mut repository) = match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => (first.into(), rest.into()),
        _ => ("docker.io".to_string(), name.to_string()),
    };
    if registry == "index.docker.io" {
        registry = "docker.io".into();
    }
    if registry == "docker.io" && !repository.contains('/') {
        repository = format!("library/{repository}");
    }
    (registry, repository)
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn is_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= TAG_MAX
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// An algorithm the crate accepts with the hex length it requires.
fn is_digest(d: &str) -> bool {
    let Some((algorithm, hex)) = d.split_once(':') else { return false };
    let length = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == length && hex.bytes().all(|c| c.is_ascii_hexdigit())
}

/// Components `[a-z0-9]+` joined by `.`, `_`, `__` or dashes, separated by `/`.
fn is_path(path: &str) -> bool {
    path.split('/').all(is_component)
}

fn is_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !b.first().is_some_and(|&c| alnum(c)) || !b.last().is_some_and(|&c| alnum(c)) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let run = b[i..].iter().take_while(|&&c| !alnum(c)).count();
        let separator = &c[i..i + run];
        if !(matches!(separator, "." | "_" | "__") || separator.bytes().all(|c| c == b'-')) {
            return false;
        }
        i += run;
    }
    true
}

/// Labels `[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?` joined by `.`, then an optional `:port`.
fn is_domain(domain: &str) -> bool {
    let (host, port) = match domain.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (domain, None),
    };
    let label = |l: &str| {
        let b = l.as_bytes();
        b.first().is_some_and(u8::is_ascii_alphanumeric)
            && b.last().is_some_and(u8::is_ascii_alphanumeric)
            && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
    };
    host.split('.').all(label) && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strings assembled from the pieces references are made of, separators and wrong pieces
    /// included: wherever the hand-written reader accepts one, the crate parses it to the same
    /// reference; and it accepts the usual forms.
    #[test]
    fn the_reader_agrees_with_the_crate() {
        let hex = "0123456789abcdef".repeat(8);
        let pieces: Vec<String> = [
            "a",
            "b0",
            "ko",
            "x",
            "A",
            "Z",
            "9",
            "localhost",
            "docker.io",
            "index.docker.io",
            "example.com",
            "reg-1.local",
            "127.0.0.1",
            ".",
            "_",
            "__",
            "___",
            "-",
            "--",
            "/",
            "//",
            ":",
            ":5000",
            ":x",
            "@",
            "é",
            " ",
            "latest",
            "v1.2",
            "_t",
            ".t",
            "-t",
        ]
        .into_iter()
        .map(String::from)
        .chain([format!("@sha256:{}", &hex[..64]), format!("@sha512:{hex}"), format!("@sha256:{}", &hex[..63])])
        .collect();
        let mut rng = fastrand::Rng::with_seed(0x2545_f491_4f6c_dd1d);
        let mut next = move |n: usize| rng.usize(..n);
        let mut accepted = 0;
        for _ in 0..200_000 {
            let s: String = (0..1 + next(7)).map(|_| pieces[next(pieces.len())].as_str()).collect();
            if let Some(fast) = read_plain(&s) {
                accepted += 1;
                assert_eq!(Reference::from_str(&s).as_ref(), Ok(&fast), "{s:?}");
            }
        }
        assert!(accepted > 5_000, "only {accepted} accepted");
        for s in [
            "ubuntu",
            "ubuntu:22.04",
            "gcr.io/distroless/static:nonroot",
            "127.0.0.1:5000/base:v1",
            "localhost/app",
            "index.docker.io/library/alpine:3",
            "cgr.dev/chainguard/static@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "reg.example.com/a/b-c/d__e:tag@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            let fast = read_plain(s).unwrap_or_else(|| panic!("declined {s:?}"));
            assert_eq!(Reference::from_str(s), Ok(fast), "{s:?}");
        }
    }

    /// Invalid references get the crate's own error.
    #[test]
    fn errors_are_the_crates() {
        for s in ["", "a/UPPER", "a:b:c", "a@sha256:abc", "a@md5:0123456789abcdef0123456789abcdef", "a//b"] {
            assert_eq!(parse_reference(s), Reference::from_str(s), "{s:?}");
            assert!(parse_reference(s).is_err(), "{s:?}");
        }
    }
}
