//! `ko login` and `ko logout`: flags only; the core stores and removes the credentials
//! (`ko_core::registry::login`), in the Docker config as docker does.

use std::io::Read;

use clap::Args;
use ko_core::registry::login;
use ko_core::{Error, ErrorKind};

#[derive(Args)]
pub struct LoginCommand {
    /// Registry host, e.g. `registry.example.com` or `127.0.0.1:5000` (Docker Hub: `docker.io`).
    registry: String,
    /// Username.
    #[arg(short = 'u', long = "username")]
    username: String,
    /// Password (prefer --password-stdin: a password on the command line is visible to others).
    #[arg(short = 'p', long = "password", conflicts_with = "password_stdin")]
    password: Option<String>,
    /// Read the password from stdin.
    #[arg(long = "password-stdin")]
    password_stdin: bool,
}

#[derive(Args)]
pub struct LogoutCommand {
    /// Registry host (Docker Hub: `docker.io`).
    registry: String,
}

pub fn login(cmd: LoginCommand) -> ko_core::Result<()> {
    let password = match (cmd.password, cmd.password_stdin) {
        (Some(p), _) => p,
        (None, true) => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| Error::new(ErrorKind::Io, format!("cannot read the password from stdin: {e}")))?;
            text.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => {
            return Err(Error::new(ErrorKind::InvalidInput, "give the password with --password-stdin or -p"));
        }
    };
    let stored = login::login(&cmd.registry, &cmd.username, &password, &ko_core::Env::from_process())?;
    eprintln!("logged in via {stored}");
    Ok(())
}

pub fn logout(cmd: LogoutCommand) -> ko_core::Result<()> {
    if login::logout(&cmd.registry, &ko_core::Env::from_process())? {
        eprintln!("Removing login credentials for {}", cmd.registry);
    } else {
        eprintln!("Not logged in to {}", cmd.registry);
    }
    Ok(())
}
