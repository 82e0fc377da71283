//! The command line's shape: each flag only where it applies.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// `tollgate`.
#[derive(Parser)]
#[command(
    name = "tollgate",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("TOLLGATE_REVISION"), ")"),
    about = "API-gateway sidecar: issues tokens, guards routes, forwards"
)]
pub struct Cli {
    /// Config file; `tollgate --config FILE` is `tollgate run --config FILE`.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Log line format of `tollgate --config FILE`.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Log line format.
#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (coloured on a terminal).
    Text,
    /// One JSON object a line.
    Json,
}

/// The subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Run the gateway; SIGHUP or a change of the file reloads, SIGTERM drains and exits.
    Run {
        /// Config file.
        #[arg(long)]
        config: PathBuf,
        /// Log line format.
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
    },
    /// Validate the config and print the resolved routes (exit 0 valid, 1 invalid).
    Check {
        /// Config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Run the gateway on the bundled example with a demo product API.
    Demo {
        /// Public address of the demo gateway.
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: std::net::SocketAddr,
        /// Log line format.
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
        /// Refused: the demo runs its own bundled config.
        #[arg(long, hide = true)]
        config: Option<PathBuf>,
    },
    /// Read a secret (prompted for, not echoed, on a terminal; else stdin), print its
    /// argon2id hash for the YAML.
    HashSecret,
    /// Ask the running gateway's admin listener (from the config) whether it is ready:
    /// exit 0 when `/readyz` answers 200 within 3 s, 1 otherwise (a container HEALTHCHECK).
    Healthcheck {
        /// Config file of the running gateway.
        #[arg(long)]
        config: PathBuf,
    },
    /// Explain offline what a request would get from the gateway this config describes, and
    /// why (the route, the token, each requirement), with the keys and tokens in its store.
    Explain {
        /// Config file.
        #[arg(long)]
        config: PathBuf,
        /// The request's method.
        #[arg(long, default_value = "GET")]
        method: String,
        /// The request's path and query.
        #[arg(long)]
        path: String,
        /// A header field, `Name: value` (repeatable).
        #[arg(short = 'H', long = "header")]
        headers: Vec<String>,
    },
    /// Print a shell completion script (`tollgate completions bash > /etc/bash_completion.d/tollgate`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}
