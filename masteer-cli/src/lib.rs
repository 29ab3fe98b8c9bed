//! # masteer-cli
//!
//! The `masteer` command: `repair` (the main job), `generate`, `eval`,
//! `export-llamacpp` / `import-llamacpp`, `serve` (OpenAI-compatible server),
//! `info` and `check` (a GPU against the CPU). Each subcommand is a module holding its
//! clap arguments and a `run` function, so the examples call the same code.
//!
//! ```
//! use clap::Parser;
//! use masteer_cli::repair::{RepairArgs, DEFAULT_ISSUE};
//!
//! // The arguments of `masteer repair --quick` (what the test suite runs).
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     repair: RepairArgs,
//! }
//! let cli = Cli::try_parse_from(["masteer-repair", "--quick"]).unwrap();
//! assert!(cli.repair.quick);
//! assert_eq!(cli.repair.issue, DEFAULT_ISSUE);
//! assert_eq!(cli.repair.out, std::path::PathBuf::from("target/masteer-repair"));
//! ```

#![warn(missing_docs)]

#[cfg(feature = "cpu")]
pub mod check;
pub mod eval;
pub mod generate;
pub mod info;
pub mod llamacpp;
pub mod model;
pub mod repair;
pub mod serve;

/// Log through `tracing` to stderr, filtered by `RUST_LOG` (default `warn`).
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
}
