//! The engine: one thread that owns the model and a [`ContinuousBatch`]. Requests
//! arrive through a bounded queue; between decode steps, queued requests are prefilled
//! (their steering decided inside that pass) and join the running batch while slots
//! are free; every step decodes one token for all of them; text deltas, decisions and
//! the final reply go back to each request's channel. A request whose client went
//! away leaves the batch before the next step.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use burn::tensor::backend::Backend;
use masteer_core::models::{BatchEvent, ContinuousBatch, Decider, StopReason, Tokenizer};
use masteer_core::{GenerateOptions, InterventionPlan, LoadedModel, SeqInput, StrategyLibrary};
use tokio::sync::mpsc::UnboundedSender;

use crate::api::{GenerationRequest, SteeringDecision, SteeringMode, Usage};
use crate::decision_log::DecisionLog;
use crate::error::ApiError;
use crate::metrics::Metrics;

/// What a request hears back from the engine, in order: `Started`, `Delta`s, then
/// `Done` (or `Failed` at any point).
#[derive(Clone, Debug, PartialEq)]
pub enum JobEvent {
    /// The prompt was prefilled and steered by this decision.
    Started(SteeringDecision),
    /// New text.
    Delta(String),
    /// The reply is complete.
    Done {
        /// The whole reply.
        text: String,
        /// `stop` (stop token or string) or `length`.
        finish_reason: &'static str,
        /// Token counts.
        usage: Usage,
    },
    /// The request failed.
    Failed(ApiError),
}

/// A request accepted by the server, on its way to the engine.
pub struct Job {
    /// Unique id.
    pub id: u64,
    /// Which endpoint it came from (for metrics).
    pub endpoint: &'static str,
    /// Prompt token ids.
    pub tokens: Vec<u32>,
    /// What to generate and how to steer.
    pub request: GenerationRequest,
    /// The input as text, for the decision log.
    pub input_text: String,
    /// When it arrived.
    pub arrived: Instant,
    /// Where its events go.
    pub events: UnboundedSender<JobEvent>,
}

/// State the engine shares with the HTTP side.
pub struct Shared {
    /// The artifact steering requests (swapped by reloads).
    pub library: RwLock<Option<Arc<StrategyLibrary>>>,
    /// Metrics.
    pub metrics: Metrics,
    /// The opt-in decision log.
    pub decision_log: Option<DecisionLog>,
}

impl Shared {
    /// The artifact now loaded.
    pub fn library(&self) -> Option<Arc<StrategyLibrary>> {
        match self.library.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Replace the artifact.
    pub fn set_library(&self, lib: Option<Arc<StrategyLibrary>>) {
        match self.library.write() {
            Ok(mut g) => *g = lib,
            Err(p) => *p.into_inner() = lib,
        }
    }
}

/// The HTTP side's end of the engine's queue.
#[derive(Clone)]
pub struct EngineHandle {
    tx: SyncSender<Job>,
    shared: Arc<Shared>,
}

impl EngineHandle {
    /// Queue a job; a full queue is answered at once with 503 and `Retry-After`.
    pub fn submit(&self, job: Job) -> Result<(), ApiError> {
        self.shared.metrics.queue_depth.inc();
        match self.tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                self.shared.metrics.queue_depth.dec();
                Err(ApiError::overloaded(1))
            }
            Err(TrySendError::Disconnected(_)) => {
                self.shared.metrics.queue_depth.dec();
                Err(ApiError::internal("the engine has stopped"))
            }
        }
    }

    /// The shared state.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

/// Sizes of the engine.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Most sequences decoded together. Up to 16 (the CPU's few-row kernel, which
    /// computes each row the same way whatever the batch) a reply is bit-for-bit the one
    /// it gets alone; above that decode steps use the GEMM path, whose rounding may differ.
    pub max_batch: usize,
    /// Most requests waiting for a slot before new ones get 503.
    pub queue: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_batch: 16,
            queue: 64,
        }
    }
}

/// Start the engine thread on `lm`. It stops when every handle is dropped and the
/// requests in flight have finished.
pub fn spawn<B: Backend>(
    lm: LoadedModel<B>,
    shared: Arc<Shared>,
    config: &EngineConfig,
) -> std::io::Result<(EngineHandle, std::thread::JoinHandle<()>)>
where
    LoadedModel<B>: Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::sync_channel(config.queue.max(1));
    let engine = Engine {
        lm,
        shared: shared.clone(),
        batch: ContinuousBatch::new(config.max_batch),
        live: HashMap::new(),
    };
    let thread = std::thread::Builder::new()
        .name("masteer-engine".into())
        .spawn(move || engine.run(rx))?;
    Ok((EngineHandle { tx, shared }, thread))
}

struct Live {
    events: UnboundedSender<JobEvent>,
    endpoint: &'static str,
    stop: Vec<String>,
    arrived: Instant,
    first_token: bool,
    tokens: Vec<u32>,
    sent: String,
    prompt_tokens: usize,
}

struct Engine<B: Backend> {
    lm: LoadedModel<B>,
    shared: Arc<Shared>,
    batch: ContinuousBatch<B>,
    live: HashMap<u64, Live>,
}

impl<B: Backend> Engine<B> {
    fn run(mut self, rx: Receiver<Job>) {
        let mut open = true;
        loop {
            // Admit queued jobs while there is room.
            while open && self.batch.has_room() {
                let next = if self.batch.is_empty() {
                    rx.recv().map_err(|_| TryRecvError::Disconnected)
                } else {
                    rx.try_recv()
                };
                match next {
                    Ok(job) => {
                        self.shared.metrics.queue_depth.dec();
                        self.admit(job);
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => open = false,
                }
            }
            if self.batch.is_empty() {
                if open {
                    continue;
                }
                tracing::info!("engine stopped: no handle left and nothing in flight");
                return;
            }
            self.drop_disconnected();
            self.shared.metrics.active.set(self.batch.len() as i64);
            if self.batch.is_empty() {
                continue;
            }
            self.shared
                .metrics
                .batch_size
                .observe(self.batch.len() as f64);
            match self.batch.step(&self.lm.model) {
                Ok(events) => self.dispatch(events),
                Err(e) => self.fail_all(&format!("decoding failed: {e}")),
            }
            self.shared.metrics.active.set(self.batch.len() as i64);
        }
    }

    fn admit(&mut self, job: Job) {
        if job.events.is_closed() {
            return;
        }
        let r = &job.request;
        let opts = GenerateOptions {
            max_new_tokens: r.max_tokens,
            temperature: r.temperature,
            top_k: None,
            top_p: r.top_p,
            seed: r.seed,
            stop_ids: None,
        };
        let library = self.shared.library();
        let mut decision = SteeringDecision {
            mode: match &r.steering {
                SteeringMode::Adaptive => "adaptive",
                SteeringMode::None => "none",
                SteeringMode::Fixed { .. } => "fixed",
            }
            .to_string(),
            ..Default::default()
        };
        let mut input = SeqInput::prompt(job.tokens.clone());
        let mut decider = None;
        match (&r.steering, library.as_deref()) {
            (SteeringMode::Adaptive, Some(lib)) => match lib.decider() {
                Ok(d) => decider = Some(d),
                Err(e) => {
                    let _ = job.events.send(JobEvent::Failed(ApiError::internal(format!(
                        "the artifact cannot steer adaptively: {e}"
                    ))));
                    return;
                }
            },
            (
                SteeringMode::Fixed {
                    strategy,
                    coefficient,
                },
                lib,
            ) => {
                match fixed_plan(lib, strategy, *coefficient) {
                    Ok(p) => input.plan = Some(p),
                    Err(e) => {
                        let _ = job.events.send(JobEvent::Failed(e));
                        return;
                    }
                }
                decision.strategy = Some(strategy.clone());
                decision.coefficient = coefficient.or_else(|| {
                    lib.and_then(|l| l.strategy(strategy))
                        .map(|s| s.coefficient)
                });
            }
            _ => {}
        }
        let events = self.batch.admit(
            &self.lm.model,
            job.id,
            input,
            &opts,
            self.lm.tokenizer.eos_ids(),
            decider.as_mut().map(|d| d as &mut dyn Decider),
        );
        if let (Some(d), Some(lib)) = (decider, library.as_deref()) {
            if let Some(d) = d.into_decisions().into_iter().next() {
                decision.strategy = d.name.clone();
                decision.similarities = lib
                    .strategies
                    .iter()
                    .map(|s| s.name.clone())
                    .zip(d.similarities.iter().copied())
                    .filter(|(_, s)| *s > -1.0)
                    .collect();
                decision.none_similarity = Some(d.none_similarity);
                decision.margin = Some(d.margin);
            }
        }
        let events = match events {
            Ok(ev) => ev,
            Err(e) => {
                let _ = job.events.send(JobEvent::Failed(ApiError::internal(format!(
                    "prefill failed: {e}"
                ))));
                return;
            }
        };
        self.shared
            .metrics
            .decisions
            .with_label_values(&[
                decision.mode.as_str(),
                decision.strategy.as_deref().unwrap_or("none"),
            ])
            .inc();
        self.shared
            .metrics
            .prompt_tokens
            .inc_by(job.tokens.len() as u64);
        if let Some(log) = &self.shared.decision_log {
            log.record(job.id, job.endpoint, &job.input_text, &decision);
        }
        let _ = job.events.send(JobEvent::Started(decision));
        self.live.insert(
            job.id,
            Live {
                events: job.events,
                endpoint: job.endpoint,
                stop: job.request.stop,
                arrived: job.arrived,
                first_token: false,
                tokens: Vec::new(),
                sent: String::new(),
                prompt_tokens: job.tokens.len(),
            },
        );
        self.dispatch(events);
        self.shared.metrics.active.set(self.batch.len() as i64);
    }

    fn drop_disconnected(&mut self) {
        let gone: Vec<u64> = self
            .live
            .iter()
            .filter(|(_, l)| l.events.is_closed())
            .map(|(&id, _)| id)
            .collect();
        for id in gone {
            tracing::debug!(request = id, "client went away; freeing its slot");
            self.live.remove(&id);
            if let Err(e) = self.batch.cancel(id) {
                self.fail_all(&format!("freeing a slot failed: {e}"));
                return;
            }
        }
    }

    fn dispatch(&mut self, events: Vec<BatchEvent>) {
        let tokenizer = &self.lm.tokenizer;
        let metrics = &self.shared.metrics;
        let mut stopped_by_string = Vec::new();
        for e in events {
            match e {
                BatchEvent::Token { id, token } => {
                    let Some(live) = self.live.get_mut(&id) else {
                        continue;
                    };
                    metrics.generated_tokens.inc();
                    if !live.first_token {
                        live.first_token = true;
                        metrics
                            .time_to_first_token
                            .observe(live.arrived.elapsed().as_secs_f64());
                    }
                    live.tokens.push(token);
                    if let Some(text) = progress(tokenizer, live) {
                        // A stop string ended the reply.
                        finish(live, text, "stop", metrics);
                        stopped_by_string.push(id);
                    }
                }
                BatchEvent::Finished { id, generation } => {
                    let Some(mut live) = self.live.remove(&id) else {
                        continue;
                    };
                    if stopped_by_string.contains(&id) {
                        continue;
                    }
                    live.tokens = generation.tokens;
                    let text = tokenizer.decode(&live.tokens, true).unwrap_or_default();
                    let reason = match generation.stop {
                        StopReason::StopToken => "stop",
                        StopReason::MaxTokens => "length",
                    };
                    finish(&mut live, text, reason, metrics);
                }
            }
        }
        for id in stopped_by_string {
            if self.live.remove(&id).is_some() {
                if let Err(e) = self.batch.cancel(id) {
                    self.fail_all(&format!("freeing a slot failed: {e}"));
                    return;
                }
            }
        }
    }

    fn fail_all(&mut self, message: &str) {
        tracing::error!("{message}; failing every request in flight");
        for (_, live) in self.live.drain() {
            let _ = live
                .events
                .send(JobEvent::Failed(ApiError::internal(message.to_string())));
        }
        let ids = self.batch.ids();
        for id in ids {
            let _ = self.batch.cancel(id);
        }
    }
}

/// The plan of a fixed strategy, at its own coefficient or `coefficient`.
fn fixed_plan(
    lib: Option<&StrategyLibrary>,
    name: &str,
    coefficient: Option<f32>,
) -> Result<InterventionPlan, ApiError> {
    let lib = lib.ok_or_else(|| {
        ApiError::invalid(
            Some("steering.strategy"),
            "no artifact is loaded, so there is no strategy to apply",
        )
    })?;
    let s = lib.strategy(name).ok_or_else(|| {
        let names: Vec<&str> = lib.strategies.iter().map(|s| s.name.as_str()).collect();
        ApiError::invalid(
            Some("steering.strategy"),
            format!(
                "unknown strategy '{name}'; the artifact has: {}",
                names.join(", ")
            ),
        )
    })?;
    let mut s = s.clone();
    if let Some(c) = coefficient {
        s.coefficient = c;
    }
    Ok(s.plan())
}

/// Send the new text of `live` (holding back what could start a stop string, or an
/// incomplete character). Returns the reply cut before a stop string when one appeared.
fn progress(tokenizer: &Tokenizer, live: &mut Live) -> Option<String> {
    let text = tokenizer.decode(&live.tokens, true).ok()?;
    if let Some(cut) = live.stop.iter().filter_map(|s| text.find(s.as_str())).min() {
        return Some(text[..cut].to_string());
    }
    let hold = live.stop.iter().map(|s| s.len()).max().unwrap_or(1) - 1;
    let mut end = text.len().saturating_sub(hold);
    if let Some(bad) = text.find('\u{FFFD}') {
        end = end.min(bad);
    }
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    if end > live.sent.len() && text.starts_with(live.sent.as_str()) {
        let delta = text[live.sent.len()..end].to_string();
        live.sent.push_str(&delta);
        let _ = live.events.send(JobEvent::Delta(delta));
    }
    None
}

fn finish(live: &mut Live, text: String, reason: &'static str, metrics: &Metrics) {
    if text.len() > live.sent.len() && text.starts_with(live.sent.as_str()) {
        let delta = text[live.sent.len()..].to_string();
        let _ = live.events.send(JobEvent::Delta(delta));
    }
    metrics
        .latency
        .with_label_values(&[live.endpoint])
        .observe(live.arrived.elapsed().as_secs_f64());
    let completion = live.tokens.len();
    let _ = live.events.send(JobEvent::Done {
        text,
        finish_reason: reason,
        usage: Usage {
            prompt_tokens: live.prompt_tokens,
            completion_tokens: completion,
            total_tokens: live.prompt_tokens + completion,
        },
    });
}
