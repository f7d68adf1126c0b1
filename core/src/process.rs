//! Running the programs ko drives (`go`, `git`, `kubectl`, credential helpers) so that a
//! cancelled call leaves none of them behind.
//!
//! Each child runs in its own process group with the session's [`Env`] and nothing else. `go
//! build` starts `compile`, `asm` and `link` itself; killing `go` alone (tokio's `kill_on_drop`)
//! would leave those running. A [`GroupGuard`] owns the child: when the future waiting on it is
//! dropped (which is how a call is cancelled), the guard kills the whole group and reaps the
//! leader before returning, so ko's temporary directory is removed only after nothing writes
//! into it any more.
//!
//! A child that must share the terminal (`kubectl run` attached to ko's own standard input) stays
//! in ko's process group, where a Ctrl-C on the terminal reaches it directly.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::env::Env;

/// How long dropping a guard waits for the killed group's leader to exit.
const REAP_WAIT: Duration = Duration::from_secs(2);

/// How long dropping a guard waits for a child in ko's own group (`kubectl run` on the terminal)
/// to finish after SIGTERM: it may be deleting the pod it started (`--rm`).
const TERMINAL_CHILD_WAIT: Duration = Duration::from_secs(10);

/// A command for `program` with exactly `env` as its environment, in its own process group.
pub fn command(program: impl AsRef<OsStr>, env: &Env) -> tokio::process::Command {
    command_in(program, env, true)
}

/// A command for `program` with exactly `env` as its environment; in its own process group when
/// `own_group`, else in ko's (for a child attached to the terminal).
pub fn command_in(program: impl AsRef<OsStr>, env: &Env, own_group: bool) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    cmd.env_clear();
    cmd.envs(env.vars());
    if own_group {
        cmd.process_group(0);
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// A running child that is killed, with its whole process group, unless it was waited for.
pub struct GroupGuard {
    child: tokio::process::Child,
    /// The process group to kill (`None` for a child in ko's own group).
    group: Option<u32>,
    finished: bool,
}

impl GroupGuard {
    /// Starts `cmd`. `own_group` says whether `cmd` was given its own process group.
    pub fn spawn(cmd: &mut tokio::process::Command, own_group: bool) -> std::io::Result<GroupGuard> {
        let child = cmd.spawn()?;
        let group = if own_group { child.id() } else { None };
        Ok(GroupGuard { child, group, finished: false })
    }

    /// The child, for its pipes.
    pub fn child(&mut self) -> &mut tokio::process::Child {
        &mut self.child
    }

    /// Waits for the child to exit.
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        let status = self.child.wait().await?;
        self.finished = true;
        // Anything the leader left running in its group goes too.
        self.kill_group();
        Ok(status)
    }

    /// Waits up to `limit` for the child to exit; true when it did.
    fn reap_within(&mut self, limit: Duration) -> bool {
        let start = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(None) if start.elapsed() < limit => std::thread::sleep(Duration::from_millis(2)),
                Ok(None) => return false,
                _ => return true,
            }
        }
    }

    fn kill_group(&self) {
        if let Some(pgid) = self.group.and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
            // ESRCH: the group is already gone.
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if self.group.is_none() {
            // A child sharing ko's terminal is asked to stop and given time to clean up (a Ctrl-C
            // on the terminal has reached it already); it is killed only if it does not.
            if let Some(pid) = self.child.id().and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
            if self.reap_within(TERMINAL_CHILD_WAIT) {
                return;
            }
        }
        self.kill_group();
        let _ = self.child.start_kill();
        // Reap the leader (bounded): its children died with it, and once it is gone nothing of the
        // group writes into ko's temporary directory. This blocks briefly, on the cancel path only.
        self.reap_within(REAP_WAIT);
    }
}

/// What a finished child printed.
pub struct Captured {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// Runs `cmd` (made by [`command`]) to completion, feeding `stdin` when given, collecting stdout,
/// and handing each line of stderr to `on_line` as it arrives (and collecting it too).
pub async fn run(
    cmd: &mut tokio::process::Command,
    stdin: Option<&[u8]>,
    on_line: &mut (dyn FnMut(&str) + Send),
) -> std::io::Result<Captured> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut guard = GroupGuard::spawn(cmd, true)?;
    let child = guard.child();
    let mut out = child.stdout.take().expect("stdout is piped");
    let err = child.stderr.take().expect("stderr is piped");
    let feed = async {
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // A child that exits without reading all its input is judged by its exit status.
            let _ = pipe.write_all(input).await;
        }
    };
    let read_out = async {
        let mut buf = Vec::new();
        out.read_to_end(&mut buf).await.map(|_| buf)
    };
    let read_err = async {
        let mut text = String::new();
        for_each_line(err, |line| {
            on_line(&line);
            text.push_str(&line);
            text.push('\n');
        })
        .await?;
        Ok::<_, std::io::Error>(text)
    };
    let ((), stdout, stderr) = tokio::join!(feed, read_out, read_err);
    let status = guard.wait().await?;
    Ok(Captured { status, stdout: stdout?, stderr: stderr? })
}

/// Hands each line `pipe` yields to `f`, without its newline, until end of file. Lines are read
/// as bytes and decoded lossily: a message in another encoding must not fail the call.
pub async fn for_each_line(pipe: impl AsyncRead + Unpin, mut f: impl FnMut(String)) -> std::io::Result<()> {
    let mut reader = BufReader::new(pipe);
    let mut raw = Vec::new();
    while reader.read_until(b'\n', &mut raw).await? > 0 {
        let end = raw.len() - usize::from(raw.ends_with(b"\n"));
        f(String::from_utf8_lossy(&raw[..end]).into_owned());
        raw.clear();
    }
    Ok(())
}

/// Runs `cmd` to completion and returns what it printed, ignoring stderr lines as they come.
pub async fn output(cmd: &mut tokio::process::Command) -> std::io::Result<Captured> {
    run(cmd, None, &mut |_| {}).await
}

/// Runs `program args…` in `dir` and returns its trimmed stdout when it succeeds.
pub async fn stdout_of(program: &str, args: &[&str], dir: &Path, env: &Env) -> Option<String> {
    let mut cmd = command(program, env);
    cmd.args(args).current_dir(dir);
    let out = output(&mut cmd).await.ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        Env::from_map([("PATH", "/usr/bin:/bin"), ("ONLY", "this")])
    }

    #[tokio::test]
    async fn children_see_only_the_session_environment() {
        let out = stdout_of("sh", &["-c", "echo $ONLY:${HOME:-unset}"], Path::new("/"), &env()).await;
        assert_eq!(out.as_deref(), Some("this:unset"));
    }

    #[tokio::test]
    async fn stderr_lines_arrive_one_by_one() {
        let mut cmd = command("sh", &env());
        cmd.args(["-c", "echo one >&2; echo two >&2; echo out; cat"]);
        let mut seen = Vec::new();
        let got = run(&mut cmd, Some(b"fed"), &mut |l| seen.push(l.to_string())).await.unwrap();
        assert!(got.status.success());
        assert_eq!(seen, ["one", "two"]);
        assert_eq!(got.stdout, b"out\nfed");
        assert_eq!(got.stderr, "one\ntwo\n");
    }

    #[tokio::test]
    async fn lines_in_another_encoding_do_not_fail_the_call() {
        let mut cmd = command("sh", &env());
        cmd.args(["-c", "printf 'caf\\351\\nlast' >&2"]);
        let mut seen = Vec::new();
        let got = run(&mut cmd, None, &mut |l| seen.push(l.to_string())).await.unwrap();
        assert!(got.status.success());
        assert_eq!(seen, ["caf\u{fffd}", "last"]);
    }

    #[tokio::test]
    async fn dropping_the_wait_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("grandchild");
        let mut cmd = command("sh", &env());
        // The grandchild records its pid, then both wait forever.
        cmd.args(["-c", &format!("sleep 600 & echo $! > {}; wait", pidfile.display())]);
        let work = output(&mut cmd);
        let _ = tokio::time::timeout(Duration::from_millis(300), work).await;
        let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        // Killed: the grandchild is gone or a zombie waiting for init. A SIGKILL is delivered
        // when the process is next scheduled, so on a loaded machine this takes a moment.
        let state = || {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            stat.rsplit(')').next().unwrap_or("").split_whitespace().next().unwrap_or("").to_string()
        };
        let start = Instant::now();
        while !(state().is_empty() || state() == "Z") && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let state = state();
        assert!(state.is_empty() || state == "Z", "the grandchild still runs: state {state:?}");
    }
}
