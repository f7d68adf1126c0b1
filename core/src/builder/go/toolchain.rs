//! Calls into the Go toolchain: `go list` (what a path names, cached per session until the
//! package's files change), `go env`, `go build` with the environment upstream gives it, and the
//! `-toolexec` ban, checked before any `go` command runs.

use std::collections::HashMap;
use std::ffi::OsString;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Deserialize;

use crate::env::Env;
use crate::error::{Error, Result};
use crate::events::{Event, Events};
use crate::image::Platform;
use crate::process;

/// What `go list -json` says about a package (the fields ko uses).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Package {
    pub import_path: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub dir: PathBuf,
    pub module: Option<Module>,
    pub error: Option<PackageError>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Module {
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PackageError {
    pub err: String,
}

/// A `go list` result and the state of the files it was computed from.
#[derive(Clone)]
pub struct Listed {
    pub package: Package,
    fingerprint: u64,
}

impl Listed {
    pub fn new(package: Package) -> Listed {
        let fingerprint = fingerprint(&package);
        Listed { package, fingerprint }
    }

    /// Whether the package's directory and module files are as they were when it was listed.
    pub fn is_current(&self) -> bool {
        fingerprint(&self.package) == self.fingerprint
    }
}

/// Names, sizes and modification times of the package directory's entries and of the module's
/// `go.mod`, `go.sum` and `go.work`: what `go list`'s answer depends on, short of reading files.
fn fingerprint(pkg: &Package) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let stat = |p: &Path, h: &mut std::collections::hash_map::DefaultHasher| {
        if let Ok(m) = std::fs::metadata(p) {
            (m.len(), m.modified().ok()).hash(h);
        }
    };
    stat(&pkg.dir, &mut h);
    if let Ok(entries) = std::fs::read_dir(&pkg.dir) {
        let mut names: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        names.sort();
        for p in names {
            p.hash(&mut h);
            stat(&p, &mut h);
        }
    }
    if let Some(module_dir) = pkg.module.as_ref().and_then(|m| m.dir.as_ref()) {
        for f in ["go.mod", "go.sum", "go.work"] {
            stat(&module_dir.join(f), &mut h);
        }
    }
    h.finish()
}

/// The toolchain as a session uses it: which `go`, with which environment.
pub struct Toolchain {
    pub go: String,
    pub env: Env,
    pub working_dir: PathBuf,
}

impl Toolchain {
    fn missing(&self, e: std::io::Error) -> Error {
        Error::build(format!("cannot run {:?}: {e}; install Go or set KO_GO_PATH to the go binary", self.go))
    }

    /// `go list -e -json <pattern>` in `dir`: the one package `pattern` names.
    pub async fn list(&self, dir: &Path, pattern: &str) -> Result<Package> {
        let mut cmd = process::command(&self.go, &self.env);
        cmd.args(["list", "-e", "-json", pattern]).current_dir(dir);
        let output = process::output(&mut cmd).await.map_err(|e| self.missing(e))?;
        let packages: Vec<Package> = serde_json::Deserializer::from_slice(&output.stdout)
            .into_iter::<Package>()
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::build(format!("go list {pattern}: unexpected output: {e}")))?;
        if !output.status.success() || packages.is_empty() {
            return Err(Error::not_found(format!("{pattern}: {}", output.stderr.trim())));
        }
        if packages.len() != 1 {
            return Err(Error::invalid(format!(
                "{pattern} matches {} packages; name exactly one main package",
                packages.len()
            )));
        }
        Ok(packages.into_iter().next().expect("one package"))
    }

    /// The import paths of every `main` package under the working directory (`go list ./...`).
    pub async fn main_packages(&self) -> Result<Vec<String>> {
        let mut cmd = process::command(&self.go, &self.env);
        cmd.args(["list", "-e", "-f", "{{if eq .Name \"main\"}}{{.ImportPath}}{{end}}", "./..."])
            .current_dir(&self.working_dir);
        let output = process::output(&mut cmd).await.map_err(|e| self.missing(e))?;
        if !output.status.success() {
            return Err(Error::build(format!(
                "go list ./... in {}: {}",
                self.working_dir.display(),
                output.stderr.trim()
            )));
        }
        Ok(String::from_utf8_lossy(&output.stdout).lines().filter(|l| !l.is_empty()).map(str::to_string).collect())
    }

    /// `go env -json`.
    pub async fn go_env(&self) -> Result<HashMap<String, String>> {
        let mut cmd = process::command(&self.go, &self.env);
        cmd.args(["env", "-json"]).current_dir(&self.working_dir);
        let output = process::output(&mut cmd).await.map_err(|e| self.missing(e))?;
        serde_json::from_slice(&output.stdout)
            .map_err(|e| Error::build(format!("go env -json: unexpected output: {e}")))
    }

    /// The environment of `go build` for `platform`: ko's defaults, then the session's
    /// environment, then the build's own `env` (or `defaultEnv`), the last of each name winning,
    /// as upstream. Go's scratch directory is `scratch`, inside ko's temporary directory, so it
    /// is removed with it even when the build is cancelled.
    pub fn build_env(
        &self,
        platform: &Platform,
        scratch: &Path,
        build_env: &[String],
    ) -> Result<Vec<(OsString, OsString)>> {
        let mut env: Vec<(OsString, OsString)> = vec![
            ("CGO_ENABLED".into(), "0".into()),
            ("GOOS".into(), platform.os.clone().into()),
            ("GOARCH".into(), platform.architecture.clone().into()),
            ("GOTMPDIR".into(), scratch.as_os_str().to_owned()),
        ];
        match (platform.architecture.as_str(), platform.variant.as_deref()) {
            ("arm", Some(v)) => {
                let n: u32 = v.trim_start_matches('v').parse().unwrap_or(7);
                env.push(("GOARM".into(), n.clamp(5, 7).to_string().into()));
            }
            ("amd64", Some(v)) => env.push(("GOAMD64".into(), v.into())),
            _ => {}
        }
        let session = self.env.vars().map(|(k, v)| Ok((k.to_owned(), v.to_owned())));
        let configured = build_env.iter().map(|e| match e.split_once('=') {
            Some((k, v)) => Ok((OsString::from(k), OsString::from(v))),
            None => Err(Error::config(format!("build env entry {e:?} in .ko.yaml is not KEY=VALUE"))),
        });
        for pair in session.chain(configured) {
            let (k, v) = pair?;
            env.retain(|(ek, _)| ek != &k);
            env.push((k, v));
        }
        if let Some((_, flags)) = env.iter().find(|(k, _)| k == "GOFLAGS") {
            reject_toolexec(flags.to_string_lossy().split_whitespace(), "GOFLAGS")?;
        }
        Ok(env)
    }

    /// `go build <args> -o <out> <import_path>` in `dir` with `env`, reporting each line go
    /// prints as an event.
    #[allow(clippy::too_many_arguments)]
    pub async fn build(
        &self,
        import_path: &str,
        platform: &Platform,
        args: &[String],
        dir: &Path,
        env: Vec<(OsString, OsString)>,
        out: &Path,
        events: &Events,
    ) -> Result<()> {
        let started = Instant::now();
        let platform_name = platform.to_string();
        events.emit(Event::BuildStarted { import_path: import_path.into(), platform: platform_name.clone() });
        let mut cmd = process::command(&self.go, &Env::default());
        cmd.env_clear().envs(env);
        cmd.arg("build").args(args).arg("-o").arg(out).arg(import_path).current_dir(dir);
        let mut on_line = |line: &str| {
            events.emit(Event::GoOutput {
                import_path: import_path.into(),
                platform: platform_name.clone(),
                line: line.to_string(),
            })
        };
        let output = process::run(&mut cmd, None, &mut on_line).await.map_err(|e| self.missing(e))?;
        if !output.status.success() {
            let mut text = output.stderr;
            text.push_str(&String::from_utf8_lossy(&output.stdout));
            return Err(Error::build(format!(
                "go build {import_path} for {platform}: {}:\n{}",
                output.status,
                text.trim_end()
            )));
        }
        events.emit(Event::BuildFinished {
            import_path: import_path.into(),
            platform: platform_name,
            duration: started.elapsed(),
        });
        Ok(())
    }
}

/// Refuses `-toolexec`, which would run an arbitrary program as the compiler (as upstream).
pub fn reject_toolexec<'a>(args: impl Iterator<Item = &'a str>, whence: &str) -> Result<()> {
    for a in args {
        let name = a.trim_start_matches('-').split('=').next().unwrap_or("");
        if a.starts_with('-') && name == "toolexec" {
            return Err(Error::config(format!("cannot set {a} in {whence}: ko does not allow -toolexec")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_package_directory_changes_the_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.go"), "package main\n").unwrap();
        let pkg = Package {
            import_path: "example.com/x".into(),
            name: "main".into(),
            dir: dir.path().to_path_buf(),
            module: None,
            error: None,
        };
        let listed = Listed::new(pkg);
        assert!(listed.is_current());
        std::fs::write(dir.path().join("other.go"), "package lib\n").unwrap();
        assert!(!listed.is_current());
    }

    #[test]
    fn toolexec_is_refused_wherever_it_is() {
        assert!(reject_toolexec(["-trimpath", "-toolexec=./x"].into_iter(), "flags").is_err());
        assert!(reject_toolexec(["--toolexec", "./x"].into_iter(), "flags").is_err());
        assert!(reject_toolexec(["-tags", "toolexec"].into_iter(), "flags").is_ok());
    }
}
