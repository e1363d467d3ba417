//! Command-line arguments (clap). Parsing only: no I/O here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// tomo keeps self-hosted servers in the state written in YAML manifests.
#[derive(Debug, Parser)]
#[command(name = "tomo", version, about, propagate_version = true, arg_required_else_help = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct Global {
    /// Configuration file [default: ./tomo.yaml when it exists]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Manifest folder [default: `manifests` from tomo.yaml, else ./state]
    #[arg(long, global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check every manifest without touching any server; exit 1 on errors
    Validate(ValidateArgs),
    /// Write the JSON Schemas of the manifest kinds
    Schema(SchemaArgs),
    /// Manage the encrypted secret vault
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Print a shell completion script
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Folder to write the schemas to (one per kind plus manifest.json)
    #[arg(long, value_name = "DIR", default_value = "schemas")]
    pub out: PathBuf,
    /// Write nothing; exit 1 when the files in --out differ from the current schemas
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Store a secret (value from standard input, or --from-file)
    Set(SecretSetArgs),
    /// List secret names and when they were last set (never values)
    List(SecretListArgs),
    /// Remove a secret
    Rm(SecretNameArg),
    /// Print an `enc:v1:…` value that can stand in a manifest in place of a plain value
    Encrypt(SecretEncryptArgs),
}

#[derive(Debug, Args)]
pub struct SecretSetArgs {
    /// Secret name: lowercase letters, digits and '-'
    pub name: String,
    /// Read the value from this file instead of standard input
    #[arg(long, value_name = "FILE")]
    pub from_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SecretListArgs {
    /// Print the list as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SecretNameArg {
    pub name: String,
}

#[derive(Debug, Args)]
pub struct SecretEncryptArgs {
    /// Read the value from this file instead of standard input
    #[arg(long, value_name = "FILE")]
    pub from_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    pub shell: Shell,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}
