//! # masteer-models
//!
//! The backbone of MASteer-rs: a Llama-family decoder written on burn, with hook
//! points for capture and per-sequence intervention, GGUF and Hugging Face loaders,
//! the tokenizer, the model's own chat template, KV-cached batched generation and
//! continuation scoring.
//!
//! Hook points are named like paths (`blocks.12.resid_post`), layers are 0-based
//! block indices, and positions are absolute per sequence (see [`Positions`]).
//!
//! ```no_run
//! use masteer_models::backend::Cpu;
//! use masteer_models::{ChatMessage, GenerateOptions, LoadedModel, Steering};
//!
//! // The embedded SmolLM2-135M-Instruct (fetched into the cache on first use).
//! let lm = LoadedModel::<Cpu>::load_default(&Default::default())?;
//! let conv = vec![ChatMessage::user("What is the capital of France?")];
//! let replies = lm.generate_chat(&[conv], Steering::None, &GenerateOptions::greedy(16), &mut |_, _| {})?;
//! println!("{}", replies[0].text);
//! # Ok::<(), masteer_models::ModelError>(())
//! ```

#![warn(missing_docs)]

pub mod backend;
pub mod chat;
pub mod config;
pub mod device_check;
pub use masteer_types::fsutil;
pub mod embedded;
pub mod error;
pub mod generation;
pub mod gguf;
pub mod hooks;
pub mod loader;
pub mod model;
pub mod tokenizer;
pub mod weights;

pub use chat::{ChatMessage, ChatTemplate};
pub use config::{LlamaConfig, RopeScaling};
pub use error::{ModelError, Result};
pub use generation::{
    BatchEvent, ContinuationScore, ContinuousBatch, GenerateOptions, Generation, Hooks, Reply,
    Sampler, ScoreRequest, SeqInput, Session, Steering, StopReason,
};
pub use hooks::{
    CaptureRow, CaptureSpec, Captures, Decider, FnDecider, HookPoint, Intervention,
    InterventionPlan, Operation, Positions, Site,
};
pub use loader::{LoadedModel, ModelSource};
pub use model::{ForwardState, Kernels, Llama};
pub use tokenizer::Tokenizer;
