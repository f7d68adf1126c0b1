//! Handing work to the real `kubectl`: resolved YAML on its standard input for `apply`/`create`,
//! arguments passed through for `delete`/`run`. kubectl runs with the session's environment; its
//! output goes where the session says ([`KubectlOutput`]): straight to ko's own (the CLI), or line
//! by line as events (bindings). Its exit status becomes ko's (carried by
//! [`Error::kubectl_exit`]).

use std::process::Stdio;

use tokio::io::AsyncWriteExt;

use crate::config::KubectlOutput;
use crate::env::Env;
use crate::error::{Error, ErrorKind, Result};
use crate::events::{Event, Events, OutputStream};
use crate::process::{self, GroupGuard};

/// How many of kubectl's last stderr lines a failure message quotes, when output is captured.
const QUOTED_LINES: usize = 5;

/// Runs `kubectl args…`, feeding `stdin` when given, and fails with kubectl's exit status.
pub async fn run(
    args: &[String],
    stdin: Option<String>,
    env: &Env,
    output: KubectlOutput,
    events: &Events,
) -> Result<()> {
    tracing::debug!("kubectl {}", redacted(args).join(" "));
    // Attached to the terminal (ko's own stdin), kubectl stays in ko's process group so that it
    // can read the terminal and gets the terminal's Ctrl-C itself.
    let own_group = !(output == KubectlOutput::Inherit && stdin.is_none());
    let mut cmd = process::command_in("kubectl", env, own_group);
    cmd.args(args);
    let (out, err) = match output {
        KubectlOutput::Inherit => (Stdio::inherit(), Stdio::inherit()),
        KubectlOutput::Events => (Stdio::piped(), Stdio::piped()),
    };
    cmd.stdout(out).stderr(err);
    cmd.stdin(match (&stdin, output) {
        (Some(_), _) => Stdio::piped(),
        (None, KubectlOutput::Inherit) => Stdio::inherit(),
        (None, KubectlOutput::Events) => Stdio::null(),
    });
    let mut guard = GroupGuard::spawn(&mut cmd, own_group).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound {
            "kubectl was not found on PATH; install kubectl (ko hands resolved YAML to it)".to_string()
        } else {
            format!("cannot run kubectl: {e}")
        };
        Error::new(ErrorKind::Kubectl, hint).with_source(e)
    })?;
    let child = guard.child();
    let pipe = child.stdin.take();
    let feed = async {
        if let (Some(text), Some(mut pipe)) = (stdin, pipe) {
            // kubectl may exit before reading everything (bad flags); its status says why, not EPIPE.
            let _ = pipe.write_all(text.as_bytes()).await;
        }
    };
    let forward = |pipe: Option<Box<dyn tokio::io::AsyncRead + Send + Unpin>>, stream: OutputStream| async move {
        let mut last = Vec::new();
        let Some(pipe) = pipe else { return last };
        // A read error ends the forwarding; kubectl's exit status still decides the outcome.
        let _ = process::for_each_line(pipe, |line| {
            if stream == OutputStream::Stderr {
                last.push(line.clone());
                if last.len() > QUOTED_LINES {
                    last.remove(0);
                }
            }
            events.emit(Event::KubectlOutput { stream, line });
        })
        .await;
        last
    };
    let out_pipe = child.stdout.take().map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>);
    let err_pipe = child.stderr.take().map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>);
    let ((), _, last_stderr) =
        tokio::join!(feed, forward(out_pipe, OutputStream::Stdout), forward(err_pipe, OutputStream::Stderr));
    let status = guard.wait().await.map_err(|e| Error::new(ErrorKind::Kubectl, format!("waiting for kubectl: {e}")))?;
    let said = if last_stderr.is_empty() { String::new() } else { format!(": {}", last_stderr.join("\n")) };
    match status.code() {
        Some(0) => Ok(()),
        Some(code) => Err(Error::kubectl_exit(code, format!("kubectl {} exited with status {code}{said}", verb(args)))),
        None => Err(Error::kubectl_exit(1, format!("kubectl {} was killed by a signal{said}", verb(args)))),
    }
}

/// Checks that `kubectl` is on the session's `PATH`, before anything is built for it.
pub fn find(env: &Env) -> Result<()> {
    let found = env
        .get_os("PATH")
        .map(|path| std::env::split_paths(path).any(|dir| dir.join("kubectl").is_file()))
        .unwrap_or(false);
    if found {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Kubectl,
            "kubectl was not found on PATH; install kubectl (ko hands resolved YAML to it)",
        )
        .with_source(std::io::Error::from(std::io::ErrorKind::NotFound)))
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
