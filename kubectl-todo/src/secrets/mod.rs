//! `kubectl todo secrets`: create, set, list, rotate, delete and check the
//! app's Secret without a value ever reaching the terminal, argv, logs or
//! any object other than the Secret itself.

mod dotenv;
mod error;
mod prompt;
mod read;
mod restart;
mod sources;
mod store;
mod validate;
mod value;
mod write;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::context::{self, Connection};
use crate::format::{Format, offer};
use crate::project::Project;
use crate::settings::Settings;

pub use error::Error;
pub use store::with_checksum_key;
pub use value::{CHECKSUM_KEY_ANNOTATION, MIN_PREFIX, checksum, redact_forms, redactions};

const EXAMPLES: &str = "Examples:
  # Prompt for each key on a terminal (input hidden, asked twice)
  kubectl todo secrets create

  # Without a terminal: an env file, one key from stdin, a generated auth secret
  kubectl todo secrets create --from-env-file .env.production
  pass show openai | kubectl todo secrets set OPENAI_API_KEY --stdin
  kubectl todo secrets create --from-file DATABASE_URL=./db-url --generate BETTER_AUTH_SECRET

  # Inspect: keys, lengths and fingerprints, never values
  kubectl todo secrets list
  kubectl todo secrets check -o json

  # Replace the auth secret with a new random one and roll the app
  kubectl todo secrets rotate BETTER_AUTH_SECRET";

/// Manage the app's Secret (values are never printed).
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    #[command(subcommand)]
    pub command: SecretsCommand,
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Create or complete the Secret: prompts on a terminal, else reads the given sources.
    #[command(after_help = "Examples:
  kubectl todo secrets create
  kubectl todo secrets create --from-env-file .env --create-namespace
  kubectl todo secrets create --stdin DATABASE_URL --generate BETTER_AUTH_SECRET < db-url")]
    Create(CreateArgs),
    /// Set one key: prompts on a terminal, else reads --stdin, --from-file or --generate.
    #[command(after_help = "Examples:
  kubectl todo secrets set OPENAI_API_KEY
  kubectl todo secrets set DATABASE_URL --from-file ./db-url
  pass show openai | kubectl todo secrets set OPENAI_API_KEY --stdin")]
    Set(SetArgs),
    /// List the keys with their length, a short SHA-256 fingerprint and last change.
    #[command(after_help = "Examples:
  kubectl todo secrets list
  kubectl todo secrets list -o json")]
    List(OutputArgs),
    /// Replace a generatable key (the auth secret) with a new random value.
    #[command(after_help = "Examples:
  kubectl todo secrets rotate BETTER_AUTH_SECRET
  kubectl todo secrets rotate BETTER_AUTH_SECRET --no-restart")]
    Rotate(RotateArgs),
    /// Remove one key, or the whole Secret when no key is given.
    #[command(after_help = "Examples:
  kubectl todo secrets delete OPENAI_API_KEY
  kubectl todo secrets delete")]
    Delete(DeleteArgs),
    /// Check that every required key is present, non-empty and valid; exits 1 otherwise.
    #[command(after_help = "Examples:
  kubectl todo secrets check
  kubectl todo secrets check -o json")]
    Check(OutputArgs),
}

#[derive(Debug, Default, clap::Args)]
pub struct WriteArgs {
    /// Create the namespace when it does not exist.
    #[arg(long)]
    pub create_namespace: bool,
    #[command(flatten)]
    pub restart: RestartArgs,
}

#[derive(Debug, Default, clap::Args)]
pub struct RestartArgs {
    /// Do not roll the Deployments that use the Secret (their pods keep the old values).
    #[arg(long)]
    pub no_restart: bool,
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Read KEY=VALUE lines (dotenv syntax: quotes, escapes, comments, `export`).
    #[arg(long, value_name = "PATH")]
    pub from_env_file: Option<PathBuf>,
    /// Read one key's value from a file (one final newline is dropped); repeatable.
    #[arg(long, value_name = "KEY=PATH")]
    pub from_file: Vec<String>,
    /// Read one key's value from standard input (one final newline is dropped).
    #[arg(long, value_name = "KEY")]
    pub stdin: Option<String>,
    /// Generate a random value for a generatable key; repeatable.
    #[arg(long, value_name = "KEY")]
    pub generate: Vec<String>,
    /// A value on the command line; refused unless --allow-insecure-literal (it ends up in shell history and `ps`).
    #[arg(long, value_name = "KEY=VALUE")]
    pub from_literal: Vec<String>,
    /// Accept values given on the command line.
    #[arg(long)]
    pub allow_insecure_literal: bool,
    /// Accept stand-in values from --from-env-file (`change-me`, `your-…-here`, `xxx`, `<…>`).
    #[arg(long)]
    pub allow_placeholders: bool,
    #[command(flatten)]
    pub write: WriteArgs,
}

#[derive(Debug, clap::Args)]
pub struct SetArgs {
    /// The key to set.
    pub key: String,
    /// The value itself; refused unless --allow-insecure-literal (it ends up in shell history and `ps`).
    #[arg(value_name = "VALUE")]
    pub literal: Option<String>,
    /// Read the value from standard input (one final newline is dropped).
    #[arg(long, conflicts_with_all = ["from_file", "generate", "literal"])]
    pub stdin: bool,
    /// Read the value from a file (one final newline is dropped).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["generate", "literal"])]
    pub from_file: Option<PathBuf>,
    /// Generate a random value (generatable keys only).
    #[arg(long, conflicts_with = "literal")]
    pub generate: bool,
    /// Accept a value given on the command line.
    #[arg(long)]
    pub allow_insecure_literal: bool,
    #[command(flatten)]
    pub write: WriteArgs,
}

#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    /// The key to regenerate.
    pub key: String,
    #[command(flatten)]
    pub restart: RestartArgs,
}

#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    /// The key to remove; without it the whole Secret is deleted.
    pub key: Option<String>,
    #[command(flatten)]
    pub restart: RestartArgs,
}

#[derive(Debug, clap::Args)]
pub struct OutputArgs {
    /// Output format.
    #[arg(short, long, value_parser = offer(&[(Format::Table, None), (Format::Json, None)]), default_value = "table")]
    pub output: Format,
}

pub async fn run(global: Settings, args: Args) -> anyhow::Result<ExitCode> {
    let project = global.load_project()?;
    // A prompt blocks its thread in a read: a signal then needs its own task
    // to give the terminal back before the run ends.
    let on_signal =
        crate::apply::interrupt::exit_on_signal(prompt::restore_terminal, global.clone());
    let result = match args.command {
        SecretsCommand::Create(a) => write::create(&global, &project, a).await,
        SecretsCommand::Set(a) => write::set(&global, &project, a).await,
        SecretsCommand::Rotate(a) => write::rotate(&global, &project, a).await,
        SecretsCommand::Delete(a) => write::delete(&global, &project, a).await,
        SecretsCommand::List(a) => read::list(&global, &project, a.output).await,
        SecretsCommand::Check(a) => read::check(&global, &project, a.output).await,
    };
    on_signal.abort();
    match result {
        Err(e) if matches!(e.downcast_ref::<Error>(), Some(Error::Cancelled)) => {
            eprintln!("{e}");
            // The shell's convention for a command ended by SIGINT.
            Ok(crate::report::Exit::Interrupted.into())
        }
        other => other,
    }
}

async fn connect(global: &Settings, project: &Project) -> anyhow::Result<Connection> {
    Ok(context::connect(global, &project.namespace).await?)
}
