//! `portcullis keys generate` and `portcullis keys jwks`: a new signing
//! key for `[assertion]` (PKCS#8 PEM, written with mode 0600, never over
//! an existing file), and the JWKS the gateway publishes for the
//! configured keys. Part of the binary: it prints, and exits 0 or 1.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use portcullis::assertion::{keys, Algorithm};

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Make a new private key (PKCS#8 PEM) for [assertion] signing_key_file.
    Generate {
        /// The key's algorithm.
        #[arg(long, value_enum, default_value_t = Alg::Es256)]
        algorithm: Alg,
        /// Write it to this file (mode 0600; an existing file is an error)
        /// rather than to stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Print the JWKS of the configured keys, as /.portcullis/jwks.json
    /// serves it.
    Jwks,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Alg {
    Es256,
    Eddsa,
}

pub fn run(command: KeysCommand, config: Option<&Path>) -> ExitCode {
    let result = match command {
        KeysCommand::Generate { algorithm, out } => generate(algorithm, out.as_deref()),
        KeysCommand::Jwks => jwks(config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portcullis keys: {e}");
            ExitCode::FAILURE
        }
    }
}

fn generate(alg: Alg, out: Option<&Path>) -> Result<(), String> {
    let algorithm = match alg {
        Alg::Es256 => Algorithm::Es256,
        Alg::Eddsa => Algorithm::EdDsa,
    };
    let pem = keys::generate(algorithm)?;
    let kid = keys::parse_pem(&pem)?.kid().to_string();
    let Some(path) = out else {
        let mut stdout = std::io::stdout().lock();
        return stdout
            .write_all(pem.as_bytes())
            .map_err(|e| format!("cannot write the key: {e}"));
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let shown = path.display();
    let mut file = options
        .open(path)
        .map_err(|e| format!("{shown}: cannot create it: {e}"))?;
    file.write_all(pem.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{shown}: cannot write it: {e}"))?;
    eprintln!("{shown}: a new {} key, kid {kid}", algorithm.name());
    Ok(())
}

fn jwks(config: Option<&Path>) -> Result<(), String> {
    let config = super::load(config).map_err(|e| e.to_string())?;
    let settings = config
        .assertion
        .as_ref()
        .ok_or_else(|| format!("{}: no [assertion] (or enabled = false)", config.source))?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", keys::jwks(&settings.keys)).map_err(|e| format!("cannot write: {e}"))
}
