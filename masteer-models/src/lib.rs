//! # masteer-models
//!
//! The backbone of MASteer-rs: a Llama-family decoder written on burn, with hook
//! points for capture and per-sequence intervention, GGUF and Hugging Face loaders,
//! the tokenizer, the model's own chat template, KV-cached batched generation and
//! continuation scoring.
//!
//! Hook points are named like paths (`blocks.12.resid_post`), layers are 0-based
//! block indices, and positions are absolute per sequence (see [`Positions`]).

#![warn(missing_docs)]

pub mod backend;
pub mod chat;
pub mod config;
pub mod continuous;
pub use masteer_types::fsutil;
pub mod embedded;
pub mod error;
pub mod generate;
pub mod gguf;
pub mod hooks;
pub mod loader;
pub mod model;
pub mod sampling;
pub mod scoring;
pub mod tokenizer;
pub mod weights;

pub use chat::{ChatMessage, ChatTemplate};
pub use config::{LlamaConfig, RopeScaling};
pub use continuous::{BatchEvent, ContinuousBatch};
pub use error::{ModelError, Result};
pub use generate::{GenerateOptions, Generation, Reply, Steering, StopReason};
pub use hooks::{
    CaptureRow, CaptureSpec, Captures, Decider, FnDecider, HookPoint, Intervention,
    InterventionPlan, Operation, OperationKind, Positions, Site,
};
pub use loader::{LoadedModel, ModelSource};
pub use model::{Hooks, Llama, SeqInput, Session};
pub use sampling::Sampler;
pub use tokenizer::Tokenizer;
