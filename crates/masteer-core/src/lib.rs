//! # masteer-core
//!
//! The facade of MASteer-rs: the end-to-end repair pipeline (issue → samples →
//! activations → strategies → anchors), self-describing artifacts, llama.cpp interop
//! and evaluation. It re-exports what a user needs, so `cargo add masteer-core` is enough.
//!
//! For now it re-exports the backbone; the pipeline comes with its own issue.

pub use masteer_models as models;
pub use masteer_models::{
    backend, ChatMessage, GenerateOptions, HookPoint, Hooks, Intervention, InterventionPlan,
    LoadedModel, ModelError, Positions, SeqInput, Site,
};
pub use masteer_types as types;
