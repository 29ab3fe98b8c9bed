//! `masteer serve`: the OpenAI-compatible server with per-request adaptive steering.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use masteer_server::api::RequestLimits;
use masteer_server::{EngineConfig, Server, ServerConfig};

use crate::model::ModelArgs;

/// Arguments of `masteer serve`.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// The artifact steering requests by default (without it: the plain model).
    #[arg(long)]
    pub artifact: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port (0 picks a free one, printed at start).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Most sequences decoded together (up to 16, each reply equals its solo run bit for
    /// bit on the CPU; above, decode steps may round differently).
    #[arg(long, default_value_t = 16)]
    pub max_batch: usize,
    /// Most requests waiting for a slot; more get 503 with Retry-After.
    #[arg(long, default_value_t = 64)]
    pub queue: usize,
    /// Largest `max_tokens` a request may ask for.
    #[arg(long, default_value_t = 1024)]
    pub max_tokens: usize,
    /// Append each request's steering decision to this JSON-lines file.
    #[arg(long)]
    pub decision_log: Option<PathBuf>,
    /// Seconds a shutdown (SIGTERM, Ctrl-C) waits for requests in flight.
    #[arg(long, default_value_t = 30)]
    pub grace_secs: u64,
    /// The model's name in responses (the file name by default).
    #[arg(long)]
    pub served_name: Option<String>,
    /// The model and device.
    #[command(flatten)]
    pub model: ModelArgs,
}

crate::run_on_device!(
    #[doc = "Serve until SIGTERM or Ctrl-C."]
    ServeArgs,
    |args, lm, _| {
        let config = ServerConfig {
            artifact: args.artifact.clone(),
            decision_log: args.decision_log.clone(),
            engine: EngineConfig {
                max_batch: args.max_batch,
                queue: args.queue,
            },
            limits: RequestLimits {
                max_tokens: args.max_tokens,
                ..RequestLimits::default()
            },
            model_name: args.served_name.clone(),
            shutdown_grace: Duration::from_secs(args.grace_secs),
        };
        let server = Server::new(lm, &config)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        runtime.block_on(async move {
            let addr = format!("{}:{}", args.host, args.port);
            let listener = tokio::net::TcpListener::bind(&addr)
                .await
                .with_context(|| format!("binding {addr}"))?;
            let local = listener.local_addr()?;
            // Tests and scripts wait for this line.
            println!("listening on http://{local}");
            eprintln!(
                "artifact: {}",
                args.artifact
                    .as_ref()
                    .map_or("none (unsteered)".into(), |p| p.display().to_string())
            );
            server
                .serve(listener, masteer_server::shutdown_signal())
                .await?;
            eprintln!("server stopped");
            anyhow::Ok(())
        })
    }
);
