//! Calls into the Go toolchain: `go list` (what a path names, cached per session and on disk
//! until something its answer depends on changes), `go env`, `go build` with the environment
//! upstream gives it, and the `-toolexec` ban, checked before any `go` command runs.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::builder::template::{self, TemplateData};
use crate::env::Env;
use crate::error::{Error, Result};
use crate::events::{Event, Events};
use crate::image::Platform;
use crate::process;

/// What `go list -json` says about a package (the fields ko uses).
#[derive(Debug, Clone, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Module {
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PackageError {
    pub err: String,
}

/// A `go list` result and the state of the files it was computed from.
#[derive(Clone, Serialize, Deserialize)]
pub struct Listed {
    pub package: Package,
    fingerprint: String,
}

/// Whether the variable `name` is one of go's settings (`GOOS`, `GOFLAGS`, `CGO_ENABLED`, …),
/// which, unlike the rest of the environment, change what go produces.
pub fn is_go_setting(name: &str) -> bool {
    name.starts_with("GO") || name.starts_with("CGO_")
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

/// What `go list`'s answer (import path, package name, directory, module) depends on, short of
/// running it: the names of the package directory's entries, each Go file's header (its build
/// constraints and package clause, read with [`go_header`]), and the module's `go.mod`, `go.sum`
/// and `go.work` (sizes and times). An edit below a file's package clause, the usual one in the
/// inner loop, leaves it as it was, so the next build skips `go list`.
fn fingerprint(pkg: &Package) -> String {
    use std::os::unix::fs::MetadataExt;
    let mut h = Sha256::new();
    h.update(pkg.dir.as_os_str().as_encoded_bytes());
    if let Ok(entries) = std::fs::read_dir(&pkg.dir) {
        let mut names: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
        names.sort();
        for name in names {
            h.update(b"\n");
            h.update(name.as_encoded_bytes());
            if name.as_encoded_bytes().ends_with(b".go") {
                match std::fs::read(pkg.dir.join(&name)) {
                    Ok(text) => {
                        let header = go_header(&text);
                        h.update(format!(" {}:", header.len()));
                        h.update(header);
                    }
                    Err(e) => h.update(format!(" unreadable {:?}", e.kind())),
                }
            }
        }
    }
    if let Some(module_dir) = pkg.module.as_ref().and_then(|m| m.dir.as_ref()) {
        for f in ["go.mod", "go.sum", "go.work"] {
            let p = module_dir.join(f);
            h.update(p.as_os_str().as_encoded_bytes());
            if let Ok(m) = std::fs::metadata(&p) {
                h.update(format!(" {} {}.{} {}\n", m.len(), m.mtime(), m.mtime_nsec(), m.ino()));
            }
        }
    }
    hex::encode(h.finalize())
}

/// A Go file's bytes through its package clause: white space and comments (build constraints
/// among them), then `package` and the name. The whole file when it does not start that way,
/// so that any change to it counts.
fn go_header(text: &[u8]) -> &[u8] {
    let mut i = 0;
    loop {
        match text.get(i..).unwrap_or_default() {
            [b' ' | b'\t' | b'\r' | b'\n', ..] => i += 1,
            [b'/', b'/', ..] => i += text[i..].iter().position(|&c| c == b'\n').unwrap_or(text.len() - i),
            [b'/', b'*', ..] => match text[i + 2..].windows(2).position(|w| w == b"*/") {
                Some(end) => i += 2 + end + 2,
                None => return text,
            },
            [b'p', b'a', b'c', b'k', b'a', b'g', b'e', b' ' | b'\t', ..] => {
                let name = i + 8 + text[i + 8..].iter().take_while(|c| matches!(c, b' ' | b'\t')).count();
                let end = name + text[name..].iter().take_while(|c| c.is_ascii_alphanumeric() || **c == b'_').count();
                return if end > name { &text[..end] } else { text };
            }
            _ => return text,
        }
    }
}

/// The toolchain as a session uses it: which `go`, with which environment. `go env` and the
/// `git` facts templates use are asked once per session.
pub struct Toolchain {
    pub go: String,
    pub env: Env,
    pub working_dir: PathBuf,
    go_env: tokio::sync::OnceCell<HashMap<String, String>>,
    git: tokio::sync::Mutex<HashMap<PathBuf, TemplateData>>,
}

impl Toolchain {
    pub fn new(go: String, env: Env, working_dir: PathBuf) -> Toolchain {
        Toolchain { go, env, working_dir, go_env: Default::default(), git: Default::default() }
    }

    fn missing(&self, e: std::io::Error) -> Error {
        Error::build(format!("cannot run {:?}: {e}; install Go or set KO_GO_PATH to the go binary", self.go))
    }

    /// `go list -e -json=<fields>` of `patterns` in `dir`, in one run: one entry per distinct
    /// package, in the order the patterns name them (errors as entries, as `-e` reports them).
    /// Asking for the fields ko reads, not all, spares go the staleness check (about 60 ms).
    pub async fn list_many(&self, dir: &Path, patterns: &[&str]) -> Result<Vec<Package>> {
        let mut cmd = process::command(&self.go, &self.env);
        cmd.args(["list", "-e", "-json=ImportPath,Name,Dir,Module,Error"]).args(patterns).current_dir(dir);
        let output = process::output(&mut cmd).await.map_err(|e| self.missing(e))?;
        let what = patterns.join(" ");
        let packages: Vec<Package> = serde_json::Deserializer::from_slice(&output.stdout)
            .into_iter::<Package>()
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::build(format!("go list {what}: unexpected output: {e}")))?;
        if !output.status.success() || packages.is_empty() {
            return Err(Error::not_found(format!("{what}: {}", output.stderr.trim())));
        }
        Ok(packages)
    }

    /// The one package `pattern` names in `dir`.
    pub async fn list(&self, dir: &Path, pattern: &str) -> Result<Package> {
        let packages = self.list_many(dir, &[pattern]).await?;
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

    /// `go env -json`, asked once.
    pub async fn go_env(&self) -> Result<&HashMap<String, String>> {
        self.go_env
            .get_or_try_init(|| async {
                let mut cmd = process::command(&self.go, &self.env);
                cmd.args(["env", "-json"]).current_dir(&self.working_dir);
                let output = process::output(&mut cmd).await.map_err(|e| self.missing(e))?;
                if !output.status.success() {
                    // e.g. a malformed GOFLAGS or go.work; go says which.
                    return Err(Error::build(format!("go env failed: {}", output.stderr.trim())));
                }
                serde_json::from_slice(&output.stdout)
                    .map_err(|e| Error::build(format!("go env -json: unexpected output: {e}")))
            })
            .await
    }

    /// `.Git.*` of the repository holding `dir`, asked once per directory.
    pub async fn git(&self, dir: &Path) -> TemplateData {
        let mut known = self.git.lock().await;
        if let Some(data) = known.get(dir) {
            return data.clone();
        }
        let mut data = TemplateData::default();
        template::git_values(dir, &self.env, &mut data).await;
        known.insert(dir.to_path_buf(), data.clone());
        data
    }

    /// What `go list` results depend on besides the files: the `GO*` and `CGO_*` variables.
    pub fn list_key(&self, dir: &Path, pattern: &str) -> String {
        let mut key = format!("list v1 {} {pattern}", dir.display());
        for (k, v) in self.env.vars() {
            let k = k.to_string_lossy();
            if is_go_setting(&k) {
                key.push_str(&format!(" {k}={}", v.to_string_lossy()));
            }
        }
        key
    }

    /// The environment of `go build` for `platform`: ko's defaults, then the session's
    /// environment, then the build's own `env` (or `defaultEnv`), the last of each name winning,
    /// as upstream. (`GOTMPDIR`, inside ko's working directory, is added per run.) What would
    /// build for another platform than the image is labelled with (`GOOS=windows` in a build's
    /// env, `GOARCH` alone in the environment) is refused, saying how to choose platforms.
    pub fn build_env(&self, platform: &Platform, build_env: &[String]) -> Result<Vec<(OsString, OsString)>> {
        let mut wanted: Vec<(&str, String)> =
            vec![("GOOS", platform.os.clone()), ("GOARCH", platform.architecture.clone())];
        wanted.extend(platform.go_variant());
        let mut env: Vec<(OsString, OsString)> = vec![("CGO_ENABLED".into(), "0".into())];
        env.extend(wanted.iter().map(|(k, v)| (OsString::from(k), OsString::from(v))));
        let session = self.env.vars().map(|(k, v)| Ok((k.to_owned(), v.to_owned(), "the environment")));
        let configured = build_env.iter().map(|e| match e.split_once('=') {
            Some((k, v)) => Ok((OsString::from(k), OsString::from(v), "the build's env in .ko.yaml")),
            None => Err(Error::config(format!("build env entry {e:?} in .ko.yaml is not KEY=VALUE"))),
        });
        for entry in session.chain(configured) {
            let (k, v, whence) = entry?;
            if let Some((name, value)) = wanted.iter().find(|(name, _)| k == *name)
                && v != value.as_str()
            {
                return Err(Error::config(format!(
                    "{name}={} in {whence} would build for another platform than {platform}, which ko labels the image with; remove {name} from {whence} and choose platforms with --platform or defaultPlatforms (e.g. linux/arm64, or all)",
                    v.to_string_lossy()
                )));
            }
            env.retain(|(ek, _)| ek != &k);
            env.push((k, v));
        }
        if let Some((_, flags)) = env.iter().find(|(k, _)| k == "GOFLAGS") {
            reject_toolexec(flags.to_string_lossy().split_whitespace(), "GOFLAGS")?;
        }
        Ok(env)
    }

    /// `go build <args> -o <out_dir>/ <import paths…>` in `dir` with `env`, reporting each line
    /// go prints as an event (for every import path of the run).
    #[allow(clippy::too_many_arguments)]
    pub async fn build(
        &self,
        import_paths: &[&str],
        platform: &Platform,
        args: &[String],
        dir: &Path,
        env: Vec<(OsString, OsString)>,
        out_dir: &Path,
        events: &Events,
    ) -> Result<()> {
        let started = Instant::now();
        let platform_name = platform.to_string();
        for ip in import_paths {
            events.emit(Event::BuildStarted { import_path: ip.to_string(), platform: platform_name.clone() });
        }
        let mut out = out_dir.as_os_str().to_owned();
        out.push("/");
        let mut cmd = process::command(&self.go, &Env::default());
        cmd.env_clear().envs(env);
        cmd.arg("build").args(args).arg("-o").arg(out).args(import_paths).current_dir(dir);
        let mut on_line = |line: &str| {
            for ip in import_paths {
                events.emit(Event::GoOutput {
                    import_path: ip.to_string(),
                    platform: platform_name.clone(),
                    line: line.to_string(),
                });
            }
        };
        let output = process::run(&mut cmd, None, &mut on_line).await.map_err(|e| self.missing(e))?;
        if !output.status.success() {
            let mut text = output.stderr;
            text.push_str(&String::from_utf8_lossy(&output.stdout));
            return Err(Error::build(format!(
                "go build {} for {platform}: {}:\n{}",
                import_paths.join(" "),
                output.status,
                text.trim_end()
            )));
        }
        for ip in import_paths {
            events.emit(Event::BuildFinished {
                import_path: ip.to_string(),
                platform: platform_name.clone(),
                duration: started.elapsed(),
            });
        }
        Ok(())
    }
}

/// The entry of `packages` (one `go list` of several patterns) that `pattern` names: the package
/// with that import path, or for a relative or absolute path, the one in that directory.
pub fn listed_for<'a>(pattern: &str, packages: &'a [Package], dir: &Path) -> Option<&'a Package> {
    if let Some(p) = packages.iter().find(|p| p.import_path == pattern) {
        return Some(p);
    }
    let is_path = pattern == "."
        || pattern == ".."
        || pattern.starts_with("./")
        || pattern.starts_with("../")
        || pattern.starts_with('/');
    if !is_path {
        return None;
    }
    let wanted = dir.join(pattern);
    let wanted = wanted.canonicalize().unwrap_or(wanted);
    packages
        .iter()
        .find(|p| !p.dir.as_os_str().is_empty() && p.dir.canonicalize().unwrap_or_else(|_| p.dir.clone()) == wanted)
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

    fn main_package_in(dir: &Path) -> Package {
        Package { import_path: "example.com/x".into(), name: "main".into(), dir: dir.into(), module: None, error: None }
    }

    #[test]
    fn a_changed_package_directory_changes_the_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.go"), "package main\n").unwrap();
        let listed = Listed::new(main_package_in(dir.path()));
        assert!(listed.is_current());
        std::fs::write(dir.path().join("other.go"), "package lib\n").unwrap();
        assert!(!listed.is_current());
    }

    /// An edit below the package clause keeps a listing current; one to the clause, to a build
    /// constraint or to the set of files does not.
    #[test]
    fn only_edits_that_can_change_what_go_lists_make_a_listing_stale() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("main.go");
        std::fs::write(
            &main,
            "// Copyright\n/* a\n package lib */\n//go:build linux\n\npackage main\n\nfunc main() {}\n",
        )
        .unwrap();
        let listed = Listed::new(main_package_in(dir.path()));
        std::fs::write(
            &main,
            "// Copyright\n/* a\n package lib */\n//go:build linux\n\npackage main\n\nfunc main() { println(1) }\n",
        )
        .unwrap();
        assert!(listed.is_current(), "a change to the code");
        for stale in [
            "// Copyright\n/* a\n package lib */\n//go:build darwin\n\npackage main\n\nfunc main() {}\n",
            "// Copyright\n/* a\n package lib */\n//go:build linux\n\npackage mainx\n\nfunc main() {}\n",
            "// Copyright\n/* a\n package lib */\n//go:build linux\n\npackage main2\n",
            "/* unterminated\npackage main\n",
        ] {
            std::fs::write(&main, stale).unwrap();
            assert!(!listed.is_current(), "{stale:?}");
        }
        std::fs::write(
            &main,
            "// Copyright\n/* a\n package lib */\n//go:build linux\n\npackage main\n\nfunc main() {}\n",
        )
        .unwrap();
        assert!(listed.is_current());
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        assert!(!listed.is_current(), "a new file");
    }

    #[test]
    fn a_go_header_ends_with_the_package_name() {
        assert_eq!(go_header(b"// c\n\npackage main // x\nimport \"os\"\n"), b"// c\n\npackage main");
        assert_eq!(go_header(b"/* */package\tmain_2;"), b"/* */package\tmain_2");
        assert_eq!(go_header(b"packages main\n"), b"packages main\n");
        assert_eq!(go_header(b"package\n"), b"package\n");
        assert_eq!(go_header(b""), b"");
    }

    #[test]
    fn listed_packages_are_found_by_import_path_or_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("cmd/a")).unwrap();
        let pkg = |ip: &str, d: &Path| Package {
            import_path: ip.into(),
            name: "main".into(),
            dir: d.to_path_buf(),
            module: None,
            error: None,
        };
        let listed = [pkg("example.com/x/cmd/a", &dir.path().join("cmd/a")), pkg("./cmd/missing", Path::new(""))];
        let found = |p: &str| listed_for(p, &listed, dir.path()).map(|p| p.import_path.as_str());
        assert_eq!(found("example.com/x/cmd/a"), Some("example.com/x/cmd/a"));
        assert_eq!(found("./cmd/a"), Some("example.com/x/cmd/a"));
        assert_eq!(found("./cmd/a/"), Some("example.com/x/cmd/a"));
        assert_eq!(found("./cmd/missing"), Some("./cmd/missing"));
        assert_eq!(found("example.com/other"), None);
    }

    #[test]
    fn toolexec_is_refused_wherever_it_is() {
        assert!(reject_toolexec(["-trimpath", "-toolexec=./x"].into_iter(), "flags").is_err());
        assert!(reject_toolexec(["--toolexec", "./x"].into_iter(), "flags").is_err());
        assert!(reject_toolexec(["-tags", "toolexec"].into_iter(), "flags").is_ok());
    }
}
