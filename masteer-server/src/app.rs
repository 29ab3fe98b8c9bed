//! The HTTP side: axum routes (OpenAI-compatible completions, models, health,
//! metrics, artifact reload), streaming as server-sent events, and the server's
//! lifecycle (bind, SIGHUP reload, graceful shutdown).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use burn::tensor::backend::Backend;
use futures_util::stream::{self, Stream};
use masteer_core::models::{ChatTemplate, Tokenizer};
use masteer_core::{LoadedModel, ModelFingerprint, StrategyLibrary};
use serde_json::{json, Value};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use crate::api::{
    parse_chat, parse_completion, GenerationRequest, Prompt, RequestLimits, SteeringMode,
};
use crate::decision_log::DecisionLog;
use crate::engine::{self, EngineConfig, EngineHandle, Job, JobEvent, Shared};
use crate::error::{ApiError, ServerError};
use crate::metrics::Metrics;

/// Settings of a server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The artifact steering requests by default (none: the plain model).
    pub artifact: Option<PathBuf>,
    /// Append every steering decision to this JSON-lines file.
    pub decision_log: Option<PathBuf>,
    /// Batch and queue sizes.
    pub engine: EngineConfig,
    /// Request limits.
    pub limits: RequestLimits,
    /// The model's name in responses and `/v1/models` (the file name by default).
    pub model_name: Option<String>,
    /// How long a shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            artifact: None,
            decision_log: None,
            engine: EngineConfig::default(),
            limits: RequestLimits::default(),
            model_name: None,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

#[derive(Clone)]
struct AppState {
    engine: EngineHandle,
    tokenizer: Arc<Tokenizer>,
    template: Option<Arc<ChatTemplate>>,
    context: usize,
    limits: RequestLimits,
    model_name: Arc<str>,
    fingerprint: Arc<ModelFingerprint>,
    artifact_path: Arc<Mutex<Option<PathBuf>>>,
    next_id: Arc<AtomicU64>,
    reload_lock: Arc<tokio::sync::Mutex<()>>,
}

/// A server ready to listen: the engine thread is running.
pub struct Server {
    state: AppState,
    engine_thread: std::thread::JoinHandle<()>,
    grace: Duration,
}

/// Load `dir` for `model` and check it can steer adaptively.
pub fn load_artifact(dir: &Path, model: &ModelFingerprint) -> Result<StrategyLibrary, ServerError> {
    let err = |source| ServerError::Artifact {
        path: dir.to_path_buf(),
        source,
    };
    let lib = StrategyLibrary::load_for(dir, model).map_err(err)?;
    lib.decider().map_err(err)?;
    Ok(lib)
}

impl Server {
    /// Start the engine on `lm` with `config` (loading its artifact).
    pub fn new<B: Backend>(lm: LoadedModel<B>, config: &ServerConfig) -> Result<Self, ServerError>
    where
        LoadedModel<B>: Send + 'static,
    {
        let fingerprint = ModelFingerprint::of(&lm)?;
        let library = match &config.artifact {
            Some(dir) => Some(Arc::new(load_artifact(dir, &fingerprint)?)),
            None => None,
        };
        let decision_log = config
            .decision_log
            .as_deref()
            .map(DecisionLog::open)
            .transpose()?;
        let metrics = Metrics::new().map_err(|e| {
            ServerError::Io(std::io::Error::other(format!("registering metrics: {e}")))
        })?;
        let shared = Arc::new(Shared {
            library: std::sync::RwLock::new(library),
            metrics,
            decision_log,
        });
        let model_name: Arc<str> = config
            .model_name
            .clone()
            .unwrap_or_else(|| {
                lm.source
                    .path()
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "model".into())
            })
            .into();
        let tokenizer = Arc::new(lm.tokenizer.clone());
        let template = lm.chat_template.clone().map(Arc::new);
        let context = lm.model.config().max_position_embeddings;
        let (engine, engine_thread) = engine::spawn(lm, shared, &config.engine)?;
        Ok(Server {
            state: AppState {
                engine,
                tokenizer,
                template,
                context,
                limits: config.limits.clone(),
                model_name,
                fingerprint: Arc::new(fingerprint),
                artifact_path: Arc::new(Mutex::new(config.artifact.clone())),
                next_id: Arc::new(AtomicU64::new(1)),
                reload_lock: Arc::new(tokio::sync::Mutex::new(())),
            },
            engine_thread,
            grace: config.shutdown_grace,
        })
    }

    /// The routes, for embedding in another axum app or testing.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/chat/completions", post(chat_completions))
            .route("/v1/completions", post(completions))
            .route("/v1/models", get(models))
            .route("/v1/steering/reload", post(reload_handler))
            .route("/health", get(health))
            .route("/metrics", get(metrics))
            .with_state(self.state.clone())
    }

    /// Serve on `listener` until `shutdown` resolves, then stop accepting and let the
    /// requests in flight finish (at most the configured grace period). SIGHUP reloads
    /// the artifact from its path.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let router = self.router();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        #[cfg(unix)]
        {
            let state = self.state.clone();
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let Ok(mut hup) = signal(SignalKind::hangup()) else {
                    tracing::warn!(
                        "cannot listen for SIGHUP; reload with POST /v1/steering/reload"
                    );
                    return;
                };
                loop {
                    tokio::select! {
                        _ = hup.recv() => match reload(&state, None).await {
                            Ok(v) => tracing::info!("SIGHUP: artifact reloaded: {v}"),
                            Err(e) => tracing::warn!("SIGHUP: reload refused, the old artifact stays: {}", e.message),
                        },
                        _ = stop.changed() => return,
                    }
                }
            });
        }
        let mut graceful_rx = stop_rx.clone();
        let server = axum::serve(listener, router).with_graceful_shutdown(async move {
            let _ = graceful_rx.wait_for(|s| *s).await;
            tracing::info!("shutting down: no new connections; finishing requests in flight");
        });
        let grace = self.grace;
        let mut grace_rx = stop_rx;
        tokio::select! {
            r = server => r?,
            _ = async move {
                let _ = grace_rx.wait_for(|s| *s).await;
                tokio::time::sleep(grace).await;
            } => tracing::warn!("shutdown grace of {grace:?} over; dropping what is still in flight"),
        }
        let Server {
            state,
            engine_thread,
            ..
        } = self;
        drop(state);
        // The engine ends once its handles are gone and its batch is empty.
        let joined = tokio::task::spawn_blocking(move || engine_thread.join());
        let _ = tokio::time::timeout(grace, joined).await;
        Ok(())
    }
}

/// Resolve on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn count(state: &AppState, endpoint: &str, status: u16) {
    state
        .engine
        .shared()
        .metrics
        .requests
        .with_label_values(&[endpoint, &status.to_string()])
        .inc();
}

async fn chat_completions(State(state): State<AppState>, body: Bytes) -> Response {
    let r = parse_chat(&body, &state.limits);
    run(state, "chat", r).await
}

async fn completions(State(state): State<AppState>, body: Bytes) -> Response {
    let r = parse_completion(&body, &state.limits);
    run(state, "completions", r).await
}

async fn run(
    state: AppState,
    endpoint: &'static str,
    parsed: Result<GenerationRequest, ApiError>,
) -> Response {
    let result = match parsed {
        Ok(req) => start(&state, endpoint, req).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(r) => r,
        Err(e) => {
            count(&state, endpoint, e.status);
            e.into_response()
        }
    }
}

/// Encode, check against the context and the artifact, queue, then answer.
async fn start(
    state: &AppState,
    endpoint: &'static str,
    req: GenerationRequest,
) -> Result<Response, ApiError> {
    let (tokens, input_text, field) = match &req.prompt {
        Prompt::Chat(messages) => {
            let t = state.template.as_ref().ok_or_else(|| {
                ApiError::invalid(
                    Some("messages"),
                    "the model has no chat template; use /v1/completions",
                )
            })?;
            let text = t
                .render(messages, true)
                .map_err(|e| ApiError::invalid(Some("messages"), format!("rendering: {e}")))?;
            let tokens = state
                .tokenizer
                .encode(&text)
                .map_err(|e| ApiError::internal(format!("tokenising: {e}")))?;
            let last = messages
                .iter()
                .rev()
                .find(|m| m.role == "user")
                .map_or(String::new(), |m| m.content.clone());
            (tokens, last, "messages")
        }
        Prompt::Text(p) => {
            let tokens = state
                .tokenizer
                .encode(p)
                .map_err(|e| ApiError::internal(format!("tokenising: {e}")))?;
            (tokens, p.clone(), "prompt")
        }
    };
    if tokens.is_empty() {
        return Err(ApiError::invalid(Some(field), "the prompt has no tokens"));
    }
    if tokens.len() + req.max_tokens > state.context {
        return Err(ApiError::invalid(
            Some(field),
            format!(
                "the prompt's {} tokens plus max_tokens {} exceed the model's context of {}",
                tokens.len(),
                req.max_tokens,
                state.context
            ),
        ));
    }
    if let SteeringMode::Fixed { strategy, .. } = &req.steering {
        let lib = state.engine.shared().library();
        match lib {
            None => {
                return Err(ApiError::invalid(
                    Some("steering.strategy"),
                    "no artifact is loaded, so there is no strategy to apply",
                ))
            }
            Some(l) if l.strategy(strategy).is_none() => {
                let names: Vec<&str> = l.strategies.iter().map(|s| s.name.as_str()).collect();
                return Err(ApiError::invalid(
                    Some("steering.strategy"),
                    format!(
                        "unknown strategy '{strategy}'; the artifact has: {}",
                        names.join(", ")
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = unbounded_channel();
    let stream = req.stream;
    state.engine.submit(Job {
        id,
        endpoint,
        tokens,
        request: req,
        input_text,
        arrived: Instant::now(),
        events: tx,
    })?;
    if stream {
        count(state, endpoint, 200);
        Ok(sse(state.model_name.clone(), endpoint, id, rx).into_response())
    } else {
        let r = collect(state, endpoint, id, rx).await;
        count(
            state,
            endpoint,
            r.as_ref().map_or_else(|e| e.status, |_| 200),
        );
        r
    }
}

fn response_id(endpoint: &str, id: u64) -> String {
    match endpoint {
        "chat" => format!("chatcmpl-{id}"),
        _ => format!("cmpl-{id}"),
    }
}

async fn collect(
    state: &AppState,
    endpoint: &'static str,
    id: u64,
    mut rx: UnboundedReceiver<JobEvent>,
) -> Result<Response, ApiError> {
    let mut decision = None;
    while let Some(ev) = rx.recv().await {
        match ev {
            JobEvent::Started(d) => decision = Some(d),
            JobEvent::Delta(_) => {}
            JobEvent::Failed(e) => return Err(e),
            JobEvent::Done {
                text,
                finish_reason,
                usage,
            } => {
                let choice = if endpoint == "chat" {
                    json!({"index": 0, "message": {"role": "assistant", "content": text},
                           "finish_reason": finish_reason, "logprobs": null})
                } else {
                    json!({"index": 0, "text": text, "finish_reason": finish_reason, "logprobs": null})
                };
                let body = json!({
                    "id": response_id(endpoint, id),
                    "object": if endpoint == "chat" { "chat.completion" } else { "text_completion" },
                    "created": now_secs(),
                    "model": &*state.model_name,
                    "choices": [choice],
                    "usage": usage,
                    "steering": decision,
                });
                return Ok(Json(body).into_response());
            }
        }
    }
    Err(ApiError::internal("the engine dropped the request"))
}

fn sse(
    model: Arc<str>,
    endpoint: &'static str,
    id: u64,
    rx: UnboundedReceiver<JobEvent>,
) -> Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>> {
    let chat = endpoint == "chat";
    let rid = response_id(endpoint, id);
    let created = now_secs();
    let object = if chat {
        "chat.completion.chunk"
    } else {
        "text_completion"
    };
    let chunk = move |choice: Value, extra: Option<(&str, Value)>| {
        let mut v = json!({"id": rid, "object": object, "created": created,
                           "model": &*model, "choices": [choice]});
        if let (Some((k, x)), Some(obj)) = (extra, v.as_object_mut()) {
            obj.insert(k.to_string(), x);
        }
        Event::default().data(v.to_string())
    };
    let text_choice = move |text: &str, finish: Option<&str>| {
        if chat {
            let delta = if finish.is_some() {
                json!({})
            } else {
                json!({"content": text})
            };
            json!({"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null})
        } else {
            json!({"index": 0, "text": text, "finish_reason": finish, "logprobs": null})
        }
    };
    let s = stream::unfold((rx, false), move |(mut rx, done)| {
        let chunk = chunk.clone();
        async move {
            if done {
                return None;
            }
            let (events, finished) = match rx.recv().await {
                None => (vec![Event::default().data("[DONE]")], true),
                Some(JobEvent::Started(d)) => {
                    let choice = if chat {
                        json!({"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null})
                    } else {
                        json!({"index": 0, "text": "", "finish_reason": null})
                    };
                    (vec![chunk(choice, Some(("steering", json!(d))))], false)
                }
                Some(JobEvent::Delta(t)) => (vec![chunk(text_choice(&t, None), None)], false),
                Some(JobEvent::Done {
                    finish_reason,
                    usage,
                    ..
                }) => (
                    vec![
                        chunk(
                            text_choice("", Some(finish_reason)),
                            Some(("usage", json!(usage))),
                        ),
                        Event::default().data("[DONE]"),
                    ],
                    true,
                ),
                Some(JobEvent::Failed(e)) => (
                    vec![
                        Event::default().data(e.body()),
                        Event::default().data("[DONE]"),
                    ],
                    true,
                ),
            };
            Some((stream::iter(events.into_iter().map(Ok)), (rx, finished)))
        }
    });
    use futures_util::StreamExt;
    Sse::new(s.flatten()).keep_alive(KeepAlive::default())
}

async fn models(State(state): State<AppState>) -> Json<Value> {
    let lib = state.engine.shared().library();
    let strategies: Vec<String> = lib
        .as_ref()
        .map(|l| l.strategies.iter().map(|s| s.name.clone()).collect())
        .unwrap_or_default();
    Json(json!({
        "object": "list",
        "data": [{
            "id": &*state.model_name,
            "object": "model",
            "created": 0,
            "owned_by": "masteer",
            "steering": {"strategies": strategies, "router": lib.as_ref().map(|l| if l.gate().is_some() { "gate" } else { "anchors" })},
        }]
    }))
}

async fn health(State(state): State<AppState>) -> Json<Value> {
    let m = &state.engine.shared().metrics;
    let artifact = state
        .artifact_path
        .lock()
        .map(|p| p.clone())
        .unwrap_or_default();
    Json(json!({
        "status": "ok",
        "model": &*state.model_name,
        "artifact": artifact,
        "active_sequences": m.active.get(),
        "queue_depth": m.queue_depth.get(),
    }))
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.engine.shared().metrics.render(),
    )
        .into_response()
}

async fn reload_handler(State(state): State<AppState>, body: Bytes) -> Response {
    let path = if body.iter().all(|b| b.is_ascii_whitespace()) {
        None
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) => match v.get("artifact") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(PathBuf::from(s)),
                Some(_) => {
                    return ApiError::invalid(Some("artifact"), "'artifact' must be a path string")
                        .into_response()
                }
            },
            Err(e) => {
                return ApiError::invalid(None, format!("the body is not valid JSON: {e}"))
                    .into_response()
            }
        }
    };
    match reload(&state, path).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Load an artifact (the current path by default) and swap it in; on any error the
/// old artifact stays and the error says why.
async fn reload(state: &AppState, path: Option<PathBuf>) -> Result<Value, ApiError> {
    let _one_at_a_time = state.reload_lock.lock().await;
    let current = state
        .artifact_path
        .lock()
        .map(|p| p.clone())
        .unwrap_or_default();
    let Some(path) = path.or(current) else {
        return Err(ApiError::invalid(
            Some("artifact"),
            "no artifact path given and none was loaded",
        ));
    };
    let fp = state.fingerprint.clone();
    let p = path.clone();
    let loaded = tokio::task::spawn_blocking(move || load_artifact(&p, &fp))
        .await
        .map_err(|e| ApiError::internal(format!("reload task: {e}")))?;
    let metrics = &state.engine.shared().metrics;
    match loaded {
        Ok(lib) => {
            let names: Vec<String> = lib.strategies.iter().map(|s| s.name.clone()).collect();
            state.engine.shared().set_library(Some(Arc::new(lib)));
            if let Ok(mut g) = state.artifact_path.lock() {
                *g = Some(path.clone());
            }
            metrics.reloads.with_label_values(&["ok"]).inc();
            tracing::info!("artifact reloaded from {}", path.display());
            Ok(json!({"reloaded": true, "artifact": path, "strategies": names}))
        }
        Err(e) => {
            metrics.reloads.with_label_values(&["refused"]).inc();
            Err(ApiError::invalid(
                Some("artifact"),
                format!("reload refused, the old artifact stays: {e}"),
            ))
        }
    }
}
