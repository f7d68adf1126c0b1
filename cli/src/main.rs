//! `ko`: the command line. Parses flags into `ko_core::Options`, runs the core, prints
//! references on stdout and logs on stderr, and turns errors into a message and exit code 1.

mod deploy;
mod logging;
mod login;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, Args, Parser, Subcommand};

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
    #[arg(long = "platform", value_delimiter = ',')]
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
    #[arg(long = "image-label", value_delimiter = ',')]
    image_labels: Vec<String>,
    /// Annotation to add to the manifest and index (key=value); repeatable.
    #[arg(long = "image-annotation", value_delimiter = ',')]
    image_annotations: Vec<String>,
    /// User the image runs as (config User).
    #[arg(long)]
    image_user: Option<String>,
    /// SBOM to generate: only `none` is supported by this version.
    #[arg(long)]
    sbom: Option<String>,
}

/// Flags that decide where images go and what they are called (upstream's `options/publish.go`).
#[derive(Args)]
struct PublishFlags {
    /// Tags to publish (default: latest).
    #[arg(short = 't', long = "tags", value_delimiter = ',')]
    tags: Vec<String>,
    /// Publish and refer to the image by its tag alone (needs exactly one tag, not latest).
    #[arg(long)]
    tag_only: bool,
    /// Push images to KO_DOCKER_REPO (--push=false to only build).
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = true, default_missing_value = "true")]
    push: bool,
    /// Load images into the Docker daemon (not supported by this version yet).
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
        image_labels: build.image_labels,
        image_annotations: build.image_annotations,
        image_user: build.image_user,
        sbom: build.sbom,
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
        ..Default::default()
    }
}

async fn build(cmd: BuildCommand) -> ko_core::Result<()> {
    let opts = options(cmd.build, cmd.publish);
    let args: Vec<&str> = cmd.import_paths.iter().map(String::as_str).collect();
    let published = ko_core::build(&args, &opts).await?;
    if cmd.json {
        let entries: Vec<_> = published
            .iter()
            .map(|p| serde_json::json!({"importPath": p.import_path, "reference": p.reference, "children": p.children}))
            .collect();
        println!("{}", serde_json::Value::Array(entries));
    } else {
        for p in published {
            println!("{}", p.reference);
        }
    }
    Ok(())
}

async fn run(command: Command) -> ko_core::Result<()> {
    let work = async {
        match command {
            Command::Build(cmd) => build(*cmd).await,
            Command::Resolve(cmd) => deploy::resolve(*cmd).await,
            Command::Apply(cmd) => deploy::apply(ko_core::KubectlVerb::Apply, *cmd).await,
            Command::Create(cmd) => deploy::apply(ko_core::KubectlVerb::Create, *cmd).await,
            Command::Delete(cmd) => deploy::delete(cmd).await,
            Command::Run(cmd) => deploy::run(*cmd).await,
            Command::Login(cmd) => login::login(cmd),
            Command::Logout(cmd) => login::logout(cmd),
            Command::Version => {
                println!("{}", env!("CARGO_PKG_VERSION"));
                Ok(())
            }
        }
    };
    // Dropping the work on Ctrl-C kills child processes (go, kubectl) and removes temporary files.
    tokio::select! {
        r = work => r,
        _ = tokio::signal::ctrl_c() => Err(ko_core::Error::new(ko_core::ErrorKind::InvalidInput, "interrupted")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if cli.verbose {
                eprintln!("Error: {e:?}");
            } else {
                eprintln!("Error: {e}");
            }
            e.exit_code().and_then(|c| u8::try_from(c).ok()).map(ExitCode::from).unwrap_or(ExitCode::FAILURE)
        }
    }
}
