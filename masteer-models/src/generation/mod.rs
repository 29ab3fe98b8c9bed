//! Running the model: batched sessions (left-padded prefill, then KV-cached steps),
//! the generation loop with per-sequence steering and streaming, sampling, scoring of
//! given continuations, and continuous batching for servers. The decoder in
//! [`crate::model`] only does the forward pass; everything that drives it is here.

mod continuous;
mod generate;
mod sampling;
mod scoring;
mod session;

pub use continuous::{BatchEvent, ContinuousBatch};
pub use generate::{
    generate, generate_replies, GenerateOptions, Generation, Reply, Steering, StopReason,
};
pub use sampling::Sampler;
pub use scoring::{logits_at, score, ContinuationScore, ScoreRequest};
pub use session::{Hooks, SeqInput, Session};
