//! # masteer-server
//!
//! An OpenAI-compatible HTTP server for steered models: `POST /v1/chat/completions`
//! and `POST /v1/completions` (plain and streamed as server-sent events), `GET
//! /v1/models`, `GET /health`, `GET /metrics` (Prometheus), and `POST
//! /v1/steering/reload`. Each request may carry a `steering` extension
//! (`{"mode": "adaptive" | "none" | "fixed", "strategy": "...", "coefficient": 1.5}`;
//! adaptive with the loaded artifact by default) and gets back the decision that
//! steered it. Concurrent requests share one continuously batched decode loop
//! ([`engine`]), each with its own plan.
//!
//! The model crates know nothing of serving; this crate is what `masteer serve` runs.
//!
//! ```no_run
//! use masteer_core::backend::{default_device, DefaultBackend};
//! use masteer_core::LoadedModel;
//! use masteer_server::{Server, ServerConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let lm: LoadedModel<DefaultBackend> = LoadedModel::load_default(&default_device())?;
//! let config = ServerConfig {
//!     artifact: Some("target/masteer-repair/artifact".into()),
//!     ..Default::default()
//! };
//! let server = Server::new(lm, &config)?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! server.serve(listener, masteer_server::shutdown_signal()).await?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod api;
mod app;
pub mod decision_log;
pub mod engine;
mod error;
pub mod metrics;

pub use app::{load_artifact, shutdown_signal, Server, ServerConfig};
pub use engine::EngineConfig;
pub use error::{ApiError, ServerError};
