//! `ko`: the command line. Parses flags into `ko_core::Options`, runs one engine session, prints
//! references on stdout and logs on stderr (with a live progress display when stderr is a
//! terminal), and turns errors into a message and an exit status: 1, kubectl's status, or
//! 128 + the signal (SIGINT, SIGTERM, SIGHUP cancel the call and clean up first).

mod deploy;
mod logging;
mod login;
mod progress;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use clap::{ArgAction, Args, Parser, Subcommand};
use ko_core::{CancelToken, Session};

#[derive(Parser)]
#[command(
    name = "ko",
    version,
    about = "Build and deploy Go applications as container images",
    propagate_version = true
)]
struct Cli {
    /// Log debug detail (registry traffic) to stderr.
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build and publish container images from the given import paths.
    #[command(visible_alias = "publish")]
    Build(Box<BuildCommand>),
    /// Print the YAML files with every ko:// reference replaced by the published image.
    Resolve(Box<deploy::ResolveCommand>),
    /// Resolve, then `kubectl apply -f -` the result.
    Apply(Box<deploy::ApplyCommand>),
    /// Resolve, then `kubectl create -f -` the result.
    Create(Box<deploy::ApplyCommand>),
    /// `kubectl delete` with the given arguments.
    Delete(deploy::DeleteCommand),
    /// Build and publish an import path, then `kubectl run` it.
    Run(Box<deploy::RunCommand>),
    /// Store a registry's credentials in the Docker config (as `docker login` does).
    Login(login::LoginCommand),
    /// Remove a registry's credentials from the Docker config.
    Logout(login::LogoutCommand),
    /// Print the version.
    Version,
    /// Print a shell completion script (bash, zsh, fish or powershell), as upstream's
    /// `ko completion`: e.g. `source <(ko completion bash)`.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Args)]
struct BuildCommand {
    #[command(flatten)]
    build: BuildFlags,
    #[command(flatten)]
    publish: PublishFlags,
    /// Print a JSON array of {importPath, reference, children} instead of one reference per line.
    #[arg(long)]
    json: bool,
    /// Import paths: full (example.com/app/cmd/x), relative (./cmd/x, .) or ko://…
    import_paths: Vec<String>,
}

/// Flags that shape what is built (upstream's `options/build.go`).
#[derive(Args)]
struct BuildFlags {
    /// Platforms to build: `all`, or os/arch[/variant][:osversion], comma-separated.
    #[arg(long = "platform")]
    platforms: Vec<String>,
    /// Concurrent builds (0 = number of CPUs).
    #[arg(short = 'j', long, default_value_t = 0)]
    jobs: usize,
    /// Build with `-gcflags all=-N -l` (for debuggers).
    #[arg(long)]
    disable_optimizations: bool,
    /// Linker flags for `go build`; repeatable, joined with spaces.
    #[arg(long = "ldflags")]
    ldflags: Vec<String>,
    /// Label to add to the image config (key=value); repeatable.
    #[arg(long = "image-label")]
    image_labels: Vec<String>,
    /// Annotation to add to the manifest and index (key=value); repeatable.
    #[arg(long = "image-annotation")]
    image_annotations: Vec<String>,
    /// User the image runs as (config User).
    #[arg(long)]
    image_user: Option<String>,
    /// SBOM to generate and attach to each image: spdx (default) or none.
    #[arg(long)]
    sbom: Option<String>,
    /// Also write each SBOM into this directory (<app>-<os>-<arch>.spdx.json, <app>-index.spdx.json).
    #[arg(long)]
    sbom_dir: Option<PathBuf>,
    /// How ko's layers are compressed: gzip (default) or zstd.
    #[arg(long)]
    layer_compression: Option<String>,
}

/// Flags that decide where images go and what they are called (upstream's `options/publish.go`).
#[derive(Args)]
struct PublishFlags {
    /// Tags to publish (default: latest).
    #[arg(short = 't', long = "tags")]
    tags: Vec<String>,
    /// Publish and refer to the image by its tag alone (needs exactly one tag, not latest).
    #[arg(long)]
    tag_only: bool,
    /// Push images to KO_DOCKER_REPO (--push=false to only build).
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = true, default_missing_value = "true")]
    push: bool,
    /// Load images into the Docker engine (DOCKER_HOST) instead of pushing them.
    #[arg(short = 'L', long)]
    local: bool,
    /// Name images KO_DOCKER_REPO/<import path>.
    #[arg(short = 'P', long)]
    preserve_import_paths: bool,
    /// Name images KO_DOCKER_REPO/<last element of the import path>.
    #[arg(short = 'B', long)]
    base_import_paths: bool,
    /// Name images KO_DOCKER_REPO itself.
    #[arg(long)]
    bare: bool,
    /// Allow plain HTTP and unverified TLS to registries.
    #[arg(long)]
    insecure_registry: bool,
    /// Also write images to this OCI layout directory.
    #[arg(long)]
    oci_layout_path: Option<PathBuf>,
    /// Also write images to this `docker load`-able tarball.
    #[arg(long)]
    tarball: Option<PathBuf>,
    /// Write the published references to this file, one per line.
    #[arg(long)]
    image_refs: Option<PathBuf>,
}

fn options(build: BuildFlags, publish: PublishFlags) -> ko_core::Options {
    ko_core::Options {
        platforms: build.platforms,
        jobs: build.jobs,
        disable_optimizations: build.disable_optimizations,
        ldflags: build.ldflags,
        image_labels: ko_core::KeyValues::flags(build.image_labels),
        image_annotations: ko_core::KeyValues::flags(build.image_annotations),
        image_user: build.image_user,
        sbom: build.sbom,
        sbom_dir: build.sbom_dir,
        layer_compression: build.layer_compression,
        tags: publish.tags,
        tag_only: publish.tag_only,
        push: Some(publish.push),
        local: publish.local,
        preserve_import_paths: publish.preserve_import_paths,
        base_import_paths: publish.base_import_paths,
        bare: publish.bare,
        insecure_registry: publish.insecure_registry,
        oci_layout_path: publish.oci_layout_path,
        tarball: publish.tarball,
        image_refs: publish.image_refs,
        front_end: ko_core::FrontEnd::Cli,
        kubectl_output: ko_core::KubectlOutput::Inherit,
        ..Default::default()
    }
}

/// What every command shares: the cancel token the signal handler trips, and the progress
/// display when stderr is a terminal.
pub struct Context {
    pub cancel: CancelToken,
    pub progress: Option<progress::Display>,
}

impl Context {
    /// A session for `opts`, reporting to the progress display when there is one.
    pub fn session(&self, opts: ko_core::Options) -> ko_core::Result<Session> {
        let session = Session::new(opts)?;
        Ok(match &self.progress {
            Some(display) => session.with_events(display.sink()),
            None => session,
        })
    }
}

async fn build(cmd: BuildCommand, cx: &Context) -> ko_core::Result<()> {
    let session = cx.session(options(cmd.build, cmd.publish))?;
    let args: Vec<&str> = cmd.import_paths.iter().map(String::as_str).collect();
    let published = session.build(&args, &cx.cancel).await?;
    session.finish().await?;
    if let Some(display) = &cx.progress {
        display.clear();
    }
    let mut text = String::new();
    if cmd.json {
        let json = serde_json::to_string(&published).map_err(|e| ko_core::Error::internal(e.to_string()))?;
        text.push_str(&json);
        text.push('\n');
    } else {
        for p in published {
            text.push_str(&p.reference);
            text.push('\n');
        }
    }
    write_stdout(text.as_bytes())
}

/// Writes what a command prints. A reader that went away (`ko resolve … | head -1`) ends the
/// output quietly, as it ends `cat`'s; other failures are errors, not panics.
pub fn write_stdout(bytes: &[u8]) -> ko_core::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(ko_core::Error::new(ko_core::ErrorKind::Io, format!("cannot write to stdout: {e}")).with_source(e))
        }
        _ => Ok(()),
    }
}

async fn run(command: Command, cx: &Context) -> ko_core::Result<()> {
    match command {
        Command::Build(cmd) => build(*cmd, cx).await,
        Command::Resolve(cmd) => deploy::resolve(*cmd, cx).await,
        Command::Apply(cmd) => deploy::apply(ko_core::KubectlVerb::Apply, *cmd, cx).await,
        Command::Create(cmd) => deploy::apply(ko_core::KubectlVerb::Create, *cmd, cx).await,
        Command::Delete(cmd) => deploy::delete(cmd, cx).await,
        Command::Run(cmd) => deploy::run(*cmd, cx).await,
        Command::Login(cmd) => login::login(cmd),
        Command::Logout(cmd) => login::logout(cmd),
        Command::Version => write_stdout(format!("{}\n", env!("CARGO_PKG_VERSION")).as_bytes()),
        Command::Completion { shell } => {
            use clap::CommandFactory;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "ko", &mut script);
            write_stdout(&script)
        }
    }
}

/// Trips `cancel` on SIGINT, SIGTERM or SIGHUP and records which one came.
fn watch_signals(cancel: CancelToken, received: Arc<AtomicI32>) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let kinds = [(SignalKind::interrupt(), 2), (SignalKind::terminate(), 15), (SignalKind::hangup(), 1)];
    for (kind, number) in kinds {
        let mut stream = signal(kind)?;
        let (cancel, received) = (cancel.clone(), received.clone());
        tokio::spawn(async move {
            if stream.recv().await.is_some() {
                received.store(number, Ordering::SeqCst);
                cancel.cancel();
            }
        });
    }
    Ok(())
}

fn signal_name(number: i32) -> &'static str {
    match number {
        2 => "SIGINT",
        15 => "SIGTERM",
        _ => "SIGHUP",
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let progress = std::io::stderr().is_terminal().then(progress::Display::new);
    logging::init(cli.verbose, progress.as_ref());
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cx = Context { cancel: CancelToken::new(), progress };
    let received = Arc::new(AtomicI32::new(0));
    let result = runtime.block_on(async {
        watch_signals(cx.cancel.clone(), received.clone())
            .map_err(|e| ko_core::Error::internal(format!("cannot watch for signals: {e}")))?;
        run(cli.command, &cx).await
    });
    // The call has returned (cancelled work was dropped, which killed its children and removed
    // its files); work stuck in a system call on a blocking thread must not keep ko alive.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    if let Some(display) = &cx.progress {
        display.clear();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let signal = received.load(Ordering::SeqCst);
            if signal != 0 && e.kind() == ko_core::ErrorKind::Cancelled {
                eprintln!("Error: cancelled by {}", signal_name(signal));
                return ExitCode::from(128 + signal as u8);
            }
            if cli.verbose {
                eprintln!("Error: {e:?}");
            } else {
                eprintln!("Error: {e}");
            }
            e.exit_code().and_then(|c| u8::try_from(c).ok()).map(ExitCode::from).unwrap_or(ExitCode::FAILURE)
        }
    }
}
