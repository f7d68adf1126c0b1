//! What `go build` is told for an import path: the `.ko.yaml` `builds:` entry naming it (found by
//! `go list` of each entry's `main`), its flags and ldflags (or the defaults, or `--ldflags`),
//! templated as upstream templates them, and the directory go runs in.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::toolchain::{Toolchain, reject_toolexec};
use crate::builder::template::{self, TemplateData};
use crate::config::{BuildConfig, KoConfig, Settings};
use crate::error::Result;
use crate::image::time::rfc3339;

/// `builds:` by import path: each entry's `main` (relative to its `dir`) qualified with `go list`.
/// An entry whose `main` does not exist is skipped, and of two entries for one package the last
/// is used (as upstream's map keeps it); both are reported ([`KoConfig::report`]).
pub async fn build_configs(config: &KoConfig, go: &Toolchain) -> Result<HashMap<String, BuildConfig>> {
    let mut by_path: HashMap<String, BuildConfig> = HashMap::new();
    for b in &config.builds {
        let dir = go.working_dir.join(b.dir.as_deref().unwrap_or("."));
        let written = b.main.as_deref().unwrap_or(".");
        // Upstream #483: the path must exist (a .go file names its package's directory).
        if !dir.join(written).exists() {
            config.report(format!(
                "{}: {} names main {written:?}, which does not exist in {}; the entry is ignored",
                b.main_at,
                b.name,
                dir.display()
            ))?;
            continue;
        }
        let main = if written.ends_with(".go") && dir.join(written).is_file() {
            Path::new(written).parent().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default()
        } else {
            written.to_string()
        };
        let pattern = if main.is_empty() || main == "." {
            ".".to_string()
        } else if main.starts_with("./") || main.starts_with('/') {
            main
        } else {
            format!("./{main}")
        };
        let pkg = go.list(&dir, &pattern).await.map_err(|e| e.context(format!("{} in .ko.yaml", b.name)))?;
        if let Some(earlier) = by_path.insert(pkg.import_path.clone(), b.clone()) {
            config.report(format!(
                "{}: {} and {} both name {}; {} is used (the last one, as upstream)",
                b.at, earlier.name, b.name, pkg.import_path, b.name
            ))?;
        }
    }
    Ok(by_path)
}

/// `go build`'s arguments before `-o`, and the directory it runs in, for `import_path` built with
/// `build` (its `builds:` entry, or the default one) and environment `env`: the build's (or
/// default) flags, `-trimpath`, `-gcflags`, and `-ldflags` (`--ldflags` wins over the build's,
/// which win over `defaultLdflags`), templated as upstream.
pub async fn invocation(
    import_path: &str,
    build: &BuildConfig,
    settings: &Settings,
    go: &Toolchain,
    env: &[(OsString, OsString)],
) -> Result<(Vec<String>, PathBuf)> {
    let config = &settings.config;
    if !build.name.is_empty() {
        let id = build.id.clone().unwrap_or_else(|| format!("#{}", build.index));
        tracing::info!("Using build config {id} for {import_path}");
    }
    let flags = if build.flags.is_empty() { config.default_flags.clone() } else { build.flags.clone() };
    let ldflags = if !settings.build.ldflags.is_empty() {
        settings.build.ldflags.clone()
    } else if !build.ldflags.is_empty() {
        build.ldflags.clone()
    } else {
        config.default_ldflags.clone()
    };
    let dir = settings.working_dir.join(build.dir.as_deref().unwrap_or("."));
    let mut data = TemplateData::default();
    data.insert("Env.LDFLAGS", "");
    for (k, v) in env {
        data.insert(format!("Env.{}", k.to_string_lossy()), v.to_string_lossy());
    }
    let templated = [flags.clone(), ldflags.clone()].concat();
    if template::references(&templated, ".GoEnv") {
        for (k, v) in go.go_env().await? {
            let v = env
                .iter()
                .find(|(ek, _)| ek.to_string_lossy() == k.as_str())
                .map(|(_, ev)| ev.to_string_lossy().into_owned())
                .unwrap_or_else(|| v.clone());
            data.insert(format!("GoEnv.{k}"), v);
        }
    }
    if template::references(&templated, ".Git") {
        data.extend(go.git(&dir).await);
    }
    let when = settings.build.source_epoch.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
    });
    data.insert("Date", rfc3339(when));
    data.insert("Timestamp", when.to_string());
    // `-p` first, so that a build's own flags may override it: a batch of several packages is
    // one `go build`, and this keeps `jobs` a bound on the compiles and links it runs at once.
    let mut args = vec!["-p".to_string(), settings.build.jobs.max(1).to_string()];
    for f in &flags {
        args.push(template::render(f, &data, "flags")?);
    }
    args.push("-trimpath".into());
    if settings.build.disable_optimizations {
        args.extend(["-gcflags".to_string(), "all=-N -l".to_string()]);
    }
    if !ldflags.is_empty() {
        let rendered: Vec<String> =
            ldflags.iter().map(|l| template::render(l, &data, "ldflags")).collect::<Result<_>>()?;
        args.push(format!("-ldflags={}", rendered.join(" ")));
    }
    reject_toolexec(args.iter().map(String::as_str), "build flags")?;
    Ok((args, dir))
}

/// The build's own `env`, else `defaultEnv`.
pub fn env_entries(build: &BuildConfig, config: &KoConfig) -> Vec<String> {
    if build.env.is_empty() { config.default_env.clone() } else { build.env.clone() }
}
