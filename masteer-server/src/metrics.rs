//! Prometheus metrics of the server: requests, tokens, queue depth, batch size,
//! latencies and steering decisions per strategy, rendered as Prometheus text.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

/// Every metric the server keeps, registered in one registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Requests by endpoint and status code.
    pub requests: IntCounterVec,
    /// Prompt tokens of accepted requests.
    pub prompt_tokens: IntCounter,
    /// Generated tokens.
    pub generated_tokens: IntCounter,
    /// Requests waiting for a slot.
    pub queue_depth: IntGauge,
    /// Sequences in the running batch.
    pub active: IntGauge,
    /// Batch size of each decode step.
    pub batch_size: Histogram,
    /// Time from arrival to the first token.
    pub time_to_first_token: Histogram,
    /// Time from arrival to the last token.
    pub latency: HistogramVec,
    /// Steering decisions by mode and strategy (`none` when unsteered).
    pub decisions: IntCounterVec,
    /// Artifact reloads by outcome.
    pub reloads: IntCounterVec,
}

fn seconds_buckets() -> Vec<f64> {
    vec![
        0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
    ]
}

impl Metrics {
    /// Fresh metrics.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "masteer_requests_total",
                "HTTP requests by endpoint and status",
            ),
            &["endpoint", "status"],
        )?;
        let prompt_tokens = IntCounter::new(
            "masteer_prompt_tokens_total",
            "Prompt tokens of accepted requests",
        )?;
        let generated_tokens =
            IntCounter::new("masteer_generated_tokens_total", "Generated tokens")?;
        let queue_depth = IntGauge::new("masteer_queue_depth", "Requests waiting for a slot")?;
        let active = IntGauge::new("masteer_active_sequences", "Sequences being decoded")?;
        let batch_size = Histogram::with_opts(
            HistogramOpts::new("masteer_batch_size", "Sequences per decode step")
                .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]),
        )?;
        let time_to_first_token = Histogram::with_opts(
            HistogramOpts::new(
                "masteer_time_to_first_token_seconds",
                "Time from arrival to the first generated token",
            )
            .buckets(seconds_buckets()),
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "masteer_request_latency_seconds",
                "Time from arrival to the end of the reply",
            )
            .buckets(seconds_buckets()),
            &["endpoint"],
        )?;
        let decisions = IntCounterVec::new(
            Opts::new(
                "masteer_steering_decisions_total",
                "Steering decisions by mode and strategy",
            ),
            &["mode", "strategy"],
        )?;
        let reloads = IntCounterVec::new(
            Opts::new(
                "masteer_artifact_reloads_total",
                "Artifact reloads by outcome",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(prompt_tokens.clone()))?;
        registry.register(Box::new(generated_tokens.clone()))?;
        registry.register(Box::new(queue_depth.clone()))?;
        registry.register(Box::new(active.clone()))?;
        registry.register(Box::new(batch_size.clone()))?;
        registry.register(Box::new(time_to_first_token.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(decisions.clone()))?;
        registry.register(Box::new(reloads.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            prompt_tokens,
            generated_tokens,
            queue_depth,
            active,
            batch_size,
            time_to_first_token,
            latency,
            decisions,
            reloads,
        })
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(e) = encoder.encode(&self.registry.gather(), &mut buf) {
            return format!("# error encoding metrics: {e}\n");
        }
        String::from_utf8_lossy(&buf).into_owned()
    }
}
