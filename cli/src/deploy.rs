//! `ko resolve`, `apply`, `create`, `delete` and `run`: flags into `ko_core` calls. kubectl's own
//! connection flags (`--context`, `-n`, `--kubeconfig`, …) and everything after `--` go to kubectl.

use std::io::Read;
use std::path::PathBuf;

use clap::{ArgAction, Args};

use crate::{BuildFlags, Context, PublishFlags, options};

/// The YAML inputs (`-f`, `-R`, `-l`, `--strict`).
#[derive(Args)]
pub struct FileFlags {
    /// YAML file, directory (its *.yaml, *.yml, *.json) or - for standard input; repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    filenames: Vec<PathBuf>,
    /// Walk directories named by -f recursively.
    #[arg(short = 'R', long)]
    recursive: bool,
    /// Keep only objects matching this label selector (k=v, k!=v, k in (a,b), k, !k).
    #[arg(short = 'l', long)]
    selector: Option<String>,
    /// Only ko:// strings are references (--strict=false also takes bare main-package import paths).
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_value_t = true, default_missing_value = "true")]
    strict: bool,
}

impl FileFlags {
    /// The resolve options, with standard input read when `-f -` names it.
    fn resolve_options(&self) -> ko_core::Result<ko_core::ResolveOptions> {
        let stdin = if self.filenames.iter().any(|f| f.as_os_str() == "-") {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| ko_core::Error::new(ko_core::ErrorKind::Io, format!("cannot read standard input: {e}")))?;
            Some(text)
        } else {
            None
        };
        Ok(ko_core::ResolveOptions {
            recursive: self.recursive,
            selector: self.selector.clone(),
            strict: self.strict,
            stdin,
        })
    }
}

/// `ko resolve`.
#[derive(Args)]
pub struct ResolveCommand {
    #[command(flatten)]
    files: FileFlags,
    #[command(flatten)]
    build: BuildFlags,
    #[command(flatten)]
    publish: PublishFlags,
}

/// kubectl's connection flags, passed through as given.
#[derive(Args)]
struct KubectlFlags {
    /// kubeconfig file for kubectl.
    #[arg(long)]
    kubeconfig: Option<String>,
    /// kubeconfig context for kubectl.
    #[arg(long)]
    context: Option<String>,
    /// kubeconfig cluster for kubectl.
    #[arg(long)]
    cluster: Option<String>,
    /// kubeconfig user for kubectl.
    #[arg(long)]
    user: Option<String>,
    /// Namespace for kubectl.
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    /// API server address for kubectl.
    #[arg(short = 's', long)]
    server: Option<String>,
    /// Bearer token for kubectl.
    #[arg(long)]
    token: Option<String>,
    /// Impersonate this user in kubectl.
    #[arg(long = "as")]
    as_user: Option<String>,
    /// Skip TLS verification of the API server in kubectl.
    #[arg(long)]
    insecure_skip_tls_verify: bool,
}

impl KubectlFlags {
    fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        let pairs = [
            ("kubeconfig", &self.kubeconfig),
            ("context", &self.context),
            ("cluster", &self.cluster),
            ("user", &self.user),
            ("namespace", &self.namespace),
            ("server", &self.server),
            ("token", &self.token),
            ("as", &self.as_user),
        ];
        for (name, value) in pairs {
            if let Some(v) = value {
                args.push(format!("--{name}={v}"));
            }
        }
        if self.insecure_skip_tls_verify {
            args.push("--insecure-skip-tls-verify".into());
        }
        args
    }
}

/// `ko apply` and `ko create`: what `resolve` takes, plus kubectl's flags.
#[derive(Args)]
pub struct ApplyCommand {
    #[command(flatten)]
    resolve: ResolveCommand,
    #[command(flatten)]
    kubectl: KubectlFlags,
    /// Arguments for kubectl, after `--`.
    #[arg(last = true)]
    kubectl_args: Vec<String>,
}

/// `ko delete`: everything goes to `kubectl delete`.
#[derive(Args)]
pub struct DeleteCommand {
    /// Arguments for `kubectl delete` (e.g. -f config/).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// `ko run`.
#[derive(Args)]
pub struct RunCommand {
    #[command(flatten)]
    build: BuildFlags,
    #[command(flatten)]
    publish: PublishFlags,
    /// The import path to build and run.
    import_path: String,
    /// Arguments for `kubectl run`, after `--`.
    #[arg(last = true)]
    kubectl_args: Vec<String>,
}

pub async fn resolve(cmd: ResolveCommand, cx: &Context) -> ko_core::Result<()> {
    let ro = cmd.files.resolve_options()?;
    let session = cx.session(options(cmd.build, cmd.publish))?;
    let yaml = session.resolve_files(&cmd.files.filenames, &ro, &cx.cancel).await?;
    session.finish().await?;
    if let Some(display) = &cx.progress {
        display.clear();
    }
    crate::write_stdout(yaml.as_bytes())
}

pub async fn apply(verb: ko_core::KubectlVerb, cmd: ApplyCommand, cx: &Context) -> ko_core::Result<()> {
    let ResolveCommand { files, build, publish } = cmd.resolve;
    let mut kubectl_args = cmd.kubectl.args();
    kubectl_args.extend(cmd.kubectl_args);
    let ro = files.resolve_options()?;
    let session = cx.session(options(build, publish))?;
    session.apply(verb, &files.filenames, &ro, &kubectl_args, &cx.cancel).await?;
    session.finish().await
}

pub async fn delete(cmd: DeleteCommand, cx: &Context) -> ko_core::Result<()> {
    let env = ko_core::Env::from_process();
    let events = ko_core::Events::default();
    ko_core::delete(&cmd.args, &env, ko_core::KubectlOutput::Inherit, &events, &cx.cancel).await
}

pub async fn run(cmd: RunCommand, cx: &Context) -> ko_core::Result<()> {
    let session = cx.session(options(cmd.build, cmd.publish))?;
    session.run(&cmd.import_path, &cmd.kubectl_args, &cx.cancel).await?;
    session.finish().await
}
