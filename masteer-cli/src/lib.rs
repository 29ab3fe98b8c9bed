//! # masteer-cli
//!
//! The `masteer` command: `repair` (the main job), `generate`, `eval`,
//! `export-llamacpp` / `import-llamacpp`, `serve` (OpenAI-compatible server) and
//! `info`. Each subcommand is a module holding its clap arguments and a `run`
//! function, so the examples call the same code.

#![warn(missing_docs)]

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
