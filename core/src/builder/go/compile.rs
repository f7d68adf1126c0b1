//! Compiling the binaries of a call's targets with as few `go build`s as possible: targets that
//! share a platform, flags, directory and environment go to one `go build -o DIR/ pkg1 pkg2 …`,
//! where the toolchain shares work across them (packages they have in common are compiled once,
//! and links run in parallel). Each import path is still logged and reported on its own. When a
//! batch fails, its members are built one by one, so the error names the package that broke.
//!
//! With the cache, `DIR` is the cache's directory for that invocation, so a binary that has not
//! changed is not linked again; each build hard-links its binaries out of it while holding the
//! directory's lock.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::GoBuilder;
use super::{flags, toolchain};
use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::image::Platform;

/// One binary to build: an import path for a platform, and where the build keeps its copy.
pub struct Wanted<'a> {
    pub import_path: &'a str,
    pub platform: &'a Platform,
    /// The build's own directory for this platform (inside its working directory).
    pub dir: PathBuf,
}

/// The `go build` invocation a binary needs, short of the package and the output.
struct Invocation {
    platform: Platform,
    args: Vec<String>,
    dir: PathBuf,
    env: Vec<(OsString, OsString)>,
}

impl Invocation {
    fn same(&self, other: &Invocation) -> bool {
        self.platform == other.platform && self.args == other.args && self.dir == other.dir && self.env == other.env
    }

    /// A name for the invocation, for the cache's directory of its outputs. Only go's settings
    /// count: `go build` runs every time and decides itself what to rebuild, so the directory is
    /// only a place to find the last output, and a changed `PWD` or `SHLVL` should still find it.
    fn key(&self) -> String {
        let env: Vec<String> = self
            .env
            .iter()
            .map(|(k, v)| (k.to_string_lossy(), v.to_string_lossy()))
            .filter(|(k, _)| toolchain::is_go_setting(k))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("{} {} {} {}", self.platform, self.args.join(" "), self.dir.display(), env.join(" "))
    }
}

/// The file name `go build -o DIR/` gives a main package's binary: the import path's last
/// element, or the one before a major-version suffix (`example.com/tool/v2` → `tool`).
pub fn output_name(import_path: &str) -> &str {
    let mut elements = import_path.trim_end_matches('/').rsplit('/');
    let last = elements.next().unwrap_or(import_path);
    let is_major = last.len() > 1
        && last.starts_with('v')
        && last[1..].chars().all(|c| c.is_ascii_digit())
        && last != "v0"
        && last != "v1";
    match elements.next() {
        Some(previous) if is_major => previous,
        _ => last,
    }
}

impl GoBuilder {
    /// Builds every wanted binary; returns, in order, the path of each build's own copy.
    pub(super) async fn compile(&self, wanted: &[Wanted<'_>]) -> Result<Vec<PathBuf>> {
        let mut invocations = Vec::with_capacity(wanted.len());
        for w in wanted {
            std::fs::create_dir_all(&w.dir).map_err(|e| Error::io(format!("cannot create {}", w.dir.display()), e))?;
            let build = self.build_config(w.import_path).await?;
            let env = self.go.build_env(w.platform, &flags::env_entries(&build, &self.settings.config))?;
            let (args, dir) = flags::invocation(w.import_path, &build, &self.settings, &self.go, &env).await?;
            invocations.push(Invocation { platform: w.platform.clone(), args, dir, env });
        }
        // Batches: same invocation, distinct output names (a second `server` waits for the next).
        let mut batches: Vec<Vec<usize>> = Vec::new();
        for (i, inv) in invocations.iter().enumerate() {
            let name = output_name(wanted[i].import_path);
            let fits = batches
                .iter_mut()
                .find(|b| invocations[b[0]].same(inv) && b.iter().all(|&j| output_name(wanted[j].import_path) != name));
            match fits {
                Some(batch) => batch.push(i),
                None => batches.push(vec![i]),
            }
        }
        futures::future::try_join_all(batches.iter().map(|batch| self.compile_batch(batch, &invocations, wanted)))
            .await?;
        Ok(wanted.iter().map(|w| w.dir.join("out")).collect())
    }

    /// One `go build` for the members of `batch` (indexes into `invocations` and `wanted`), each
    /// binary then linked to `<its dir>/out`.
    async fn compile_batch(&self, batch: &[usize], invocations: &[Invocation], wanted: &[Wanted<'_>]) -> Result<()> {
        let inv = &invocations[batch[0]];
        let scratch = wanted[batch[0]].dir.join("go-tmp");
        std::fs::create_dir_all(&scratch).map_err(|e| Error::io(format!("cannot create {}", scratch.display()), e))?;
        let members: Vec<&str> = batch.iter().map(|&i| wanted[i].import_path).collect();
        // One directory per invocation and set of packages: builds of other packages (in this
        // process or another) never wait for this one's lock.
        let (out_dir, _lock) = match &self.cache {
            Some(cache) => {
                let dir =
                    cache.build_dir(&inv.platform.to_string(), &format!("{} {}", inv.key(), members.join(" ")))?;
                let lock = Cache::lock(&dir).await?;
                (dir, lock)
            }
            None => (wanted[batch[0]].dir.join("bin"), None),
        };
        let result = self.go_build(&members, inv, &out_dir, &scratch).await;
        if let Err(e) = result {
            if members.len() == 1 {
                return Err(e);
            }
            // Which one broke: each alone (the others' binaries come out of these builds too).
            for member in &members {
                self.go_build(&[member], inv, &out_dir, &scratch).await?;
            }
        }
        for &i in batch {
            // `go build -o DIR/` names a Windows binary `<name>.exe`.
            let suffix = if inv.platform.os == "windows" { ".exe" } else { "" };
            let built = out_dir.join(format!("{}{suffix}", output_name(wanted[i].import_path)));
            let copy = wanted[i].dir.join("out");
            std::fs::hard_link(&built, &copy)
                .or_else(|_| std::fs::copy(&built, &copy).map(|_| ()))
                .map_err(|e| Error::io(format!("cannot copy {}", built.display()), e))?;
        }
        Ok(())
    }

    async fn go_build(&self, members: &[&str], inv: &Invocation, out_dir: &Path, scratch: &Path) -> Result<()> {
        let _permit = self.go_builds.acquire().await.map_err(|_| Error::cancelled())?;
        for member in members {
            tracing::info!("Building {member} for {}", inv.platform);
        }
        let mut env = inv.env.clone();
        env.push(("GOTMPDIR".into(), scratch.as_os_str().to_owned()));
        self.go.build(members, &inv.platform, &inv.args, &inv.dir, env, out_dir, &self.events).await
    }
}

#[cfg(test)]
mod tests {
    use super::output_name;

    #[test]
    fn output_names_follow_go() {
        assert_eq!(output_name("example.com/app/cmd/server"), "server");
        assert_eq!(output_name("example.com/tool/v2"), "tool");
        assert_eq!(output_name("example.com/tool/v1"), "v1");
        assert_eq!(output_name("example.com/app"), "app");
        assert_eq!(output_name("example.com/app/cmd/v"), "v");
    }
}
