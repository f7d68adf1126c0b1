//! The `{{ … }}` templating upstream applies to build `flags` and `ldflags` (Go's text/template
//! with `missingkey=error`): `{{.Env.NAME}}`, `{{.GoEnv.NAME}}`, `{{.Git.ShortCommit}}`,
//! `{{.Date}}`, `{{.Timestamp}}`. ko supports these field references, which is what `.ko.yaml`
//! files use; any other template construct is an error that says so.

use std::collections::BTreeMap;
use std::path::Path;

use crate::env::Env;
use crate::error::{Error, Result};

/// Values a template can reference, by dotted path without the leading dot (`Env.HOME`, `Date`).
#[derive(Debug, Default, Clone)]
pub struct TemplateData {
    values: BTreeMap<String, String>,
}

impl TemplateData {
    /// Sets `path` (e.g. `Env.VERSION`) to `value`.
    pub fn insert(&mut self, path: impl Into<String>, value: impl Into<String>) {
        self.values.insert(path.into(), value.into());
    }

    /// Adds every value of `other`.
    pub fn extend(&mut self, other: TemplateData) {
        self.values.extend(other.values);
    }
}

/// Expands every `{{ .Field.Path }}` in `text`; `what` names the setting in errors.
pub fn render(text: &str, data: &TemplateData, what: &str) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after.find("}}").ok_or_else(|| Error::config(format!("{what}: {text:?} has an unclosed {{{{")))?;
        let action = after[..close].trim();
        let path = action
            .strip_prefix('.')
            .filter(|p| !p.is_empty() && p.split('.').all(|id| !id.is_empty() && id.chars().all(|c| c.is_alphanumeric() || c == '_')))
            .ok_or_else(|| {
                Error::config(format!(
                    "{what}: {text:?}: ko supports field references such as {{{{.Env.NAME}}}}, {{{{.Git.ShortCommit}}}}, {{{{.Date}}}} in templates, not {{{{{action}}}}}"
                ))
            })?;
        let value = data.values.get(path).ok_or_else(|| {
            Error::config(format!("{what}: {text:?}: no value for .{path} (set it, or fix the name)"))
        })?;
        out.push_str(value);
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Whether any of `texts` references `prefix` (e.g. `.Git`), so costly data is gathered only when used.
pub fn references(texts: &[String], prefix: &str) -> bool {
    texts.iter().any(|t| t.contains("{{") && t.contains(prefix))
}

/// `.Git.*` for the repository holding `dir`, as upstream's `git.GetInfo` (empty values outside a
/// repository or without tags). `git` runs with the session's environment.
pub async fn git_values(dir: &Path, env: &Env, data: &mut TemplateData) {
    let git = |args: &'static [&'static str]| async move {
        crate::process::stdout_of("git", args, dir, env).await.unwrap_or_default()
    };
    let dirty = !git(&["status", "--porcelain"]).await.is_empty();
    data.insert("Git.Branch", git(&["rev-parse", "--abbrev-ref", "HEAD"]).await);
    data.insert("Git.Tag", git(&["describe", "--tags", "--abbrev=0"]).await);
    data.insert("Git.ShortCommit", git(&["rev-parse", "--short", "HEAD"]).await);
    data.insert("Git.FullCommit", git(&["rev-parse", "HEAD"]).await);
    data.insert("Git.CommitDate", git(&["log", "-1", "--format=%cI"]).await);
    data.insert("Git.CommitTimestamp", git(&["log", "-1", "--format=%ct"]).await);
    data.insert("Git.IsDirty", dirty.to_string());
    data.insert("Git.IsClean", (!dirty).to_string());
    data.insert("Git.TreeState", if dirty { "dirty" } else { "clean" });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_field_references_like_go() {
        let mut d = TemplateData::default();
        d.insert("Env.VERSION", "1.2.3");
        d.insert("Date", "1970-01-01T00:00:00Z");
        assert_eq!(
            render("-X main.v={{.Env.VERSION}} -X main.d={{ .Date }}", &d, "ldflags").unwrap(),
            "-X main.v=1.2.3 -X main.d=1970-01-01T00:00:00Z"
        );
        assert_eq!(render("-s -w", &d, "ldflags").unwrap(), "-s -w");
        let missing = render("{{.Env.NOPE}}", &d, "ldflags").unwrap_err().to_string();
        assert!(missing.contains("no value for .Env.NOPE"), "{missing}");
        let unsupported = render("{{ if .Env.X }}y{{ end }}", &d, "flags").unwrap_err().to_string();
        assert!(unsupported.contains("field references"), "{unsupported}");
        assert!(render("{{.Env.VERSION", &d, "flags").is_err());
        assert!(references(&["-X a={{.Git.Tag}}".to_string()], ".Git"));
    }
}
