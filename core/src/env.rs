//! The environment a session reads: either a snapshot of the process environment, taken once
//! when the session is made, or a map the embedder gave in [`Options::env`](crate::Options::env).
//! Nothing in the core calls `std::env::var` after that: an embedder's `setenv` on another thread
//! cannot race with a read of ours, and two sessions in one process can use different settings.
//!
//! Child processes (`go`, `git`, `kubectl`, credential helpers) get exactly this environment.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

/// A session's environment variables.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Env {
    vars: BTreeMap<OsString, OsString>,
}

/// Names only: values hold tokens and passwords, and a `{:?}` must not print them.
impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.vars.keys()).finish()
    }
}

impl Env {
    /// The process environment, now.
    pub fn from_process() -> Env {
        Env { vars: std::env::vars_os().collect() }
    }

    /// Exactly `vars`, nothing from the process.
    pub fn from_map<K: Into<OsString>, V: Into<OsString>>(vars: impl IntoIterator<Item = (K, V)>) -> Env {
        Env { vars: vars.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }

    /// A non-empty variable, when it is valid UTF-8.
    pub fn get(&self, name: &str) -> Option<String> {
        self.get_os(name).and_then(OsStr::to_str).map(str::to_string)
    }

    /// A non-empty variable.
    pub fn get_os(&self, name: &str) -> Option<&OsStr> {
        self.vars.get(OsStr::new(name)).map(OsString::as_os_str).filter(|v| !v.is_empty())
    }

    /// A non-empty variable as a path.
    pub fn path(&self, name: &str) -> Option<PathBuf> {
        self.get_os(name).map(PathBuf::from)
    }

    /// Every variable, for a child process.
    pub fn vars(&self) -> impl Iterator<Item = (&OsStr, &OsStr)> {
        self.vars.iter().map(|(k, v)| (k.as_os_str(), v.as_os_str()))
    }

    /// Where temporary files go: `TMPDIR`, else `/tmp`.
    pub fn temp_dir(&self) -> PathBuf {
        self.path("TMPDIR").unwrap_or_else(|| PathBuf::from("/tmp"))
    }

    /// The user's home directory (`HOME`).
    pub fn home(&self) -> Option<PathBuf> {
        self.path("HOME")
    }

    /// Sets a variable (tests and embedders building an environment by hand).
    pub fn set(&mut self, name: impl Into<OsString>, value: impl Into<OsString>) {
        self.vars.insert(name.into(), value.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_only_what_it_was_given() {
        let env = Env::from_map([("KO_DOCKER_REPO", "reg.example/x"), ("EMPTY", "")]);
        assert_eq!(env.get("KO_DOCKER_REPO").as_deref(), Some("reg.example/x"));
        assert_eq!(env.get("EMPTY"), None, "empty means unset, as upstream's viper reads it");
        assert_eq!(env.get("PATH"), None, "the process environment is not consulted");
        assert_eq!(env.temp_dir(), PathBuf::from("/tmp"));
        assert_eq!(env.vars().count(), 2);
    }

    #[test]
    fn debug_output_names_variables_without_their_values() {
        let env = Env::from_map([("REGISTRY_PASSWORD", "hunter2")]);
        assert_eq!(format!("{env:?}"), "{\"REGISTRY_PASSWORD\"}");
    }
}
