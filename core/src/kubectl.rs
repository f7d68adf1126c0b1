//! Handing work to the real `kubectl`: resolved YAML on its standard input for `apply`/`create`,
//! arguments passed through for `delete`/`run`. kubectl's output goes straight to ours, and its
//! exit status becomes ko's (carried by [`Error::kubectl_exit`]).

use std::process::Stdio;

use tokio::io::AsyncWriteExt;

use crate::error::{Error, ErrorKind, Result};

/// Runs `kubectl args…`, feeding `stdin` when given, and fails with kubectl's exit status.
pub async fn run(args: &[String], stdin: Option<String>) -> Result<()> {
    tracing::debug!("kubectl {}", redacted(args).join(" "));
    let mut child = tokio::process::Command::new("kubectl")
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::inherit() })
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                "kubectl was not found on PATH; install kubectl (ko hands resolved YAML to it)".to_string()
            } else {
                format!("cannot run kubectl: {e}")
            };
            Error::new(ErrorKind::Kubectl, hint).with_source(e)
        })?;
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin was piped");
        // kubectl may exit before reading everything (bad flags); its status says why, not EPIPE.
        let _ = pipe.write_all(text.as_bytes()).await;
        drop(pipe);
    }
    let status = child.wait().await.map_err(|e| Error::new(ErrorKind::Kubectl, format!("waiting for kubectl: {e}")))?;
    match status.code() {
        Some(0) => Ok(()),
        Some(code) => Err(Error::kubectl_exit(code, format!("kubectl {} exited with status {code}", verb(args)))),
        None => Err(Error::kubectl_exit(1, format!("kubectl {} was killed by a signal", verb(args)))),
    }
}

/// Flags whose values are secrets: never logged.
const SECRET_FLAGS: &[&str] = &["--token", "--password", "--client-key"];

/// `args` with the values of secret-bearing flags (`--token=x` or `--token x`) masked, for logs.
fn redacted(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut mask_next = false;
    for a in args {
        if std::mem::take(&mut mask_next) {
            out.push("***".to_string());
        } else if let Some((flag, _)) = a.split_once('=').filter(|(f, _)| SECRET_FLAGS.contains(f)) {
            out.push(format!("{flag}=***"));
        } else {
            mask_next = SECRET_FLAGS.contains(&a.as_str());
            out.push(a.clone());
        }
    }
    out
}

fn verb(args: &[String]) -> &str {
    args.first().map(String::as_str).unwrap_or("")
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_are_masked_in_logs() {
        let args: Vec<String> =
            ["apply", "--token=s3cret", "--password", "hunter2", "-n", "x"].iter().map(|s| s.to_string()).collect();
        assert_eq!(super::redacted(&args), ["apply", "--token=***", "--password", "***", "-n", "x"]);
    }
}
