//! # masteer-core
//!
//! The facade of MASteer-rs: the end-to-end repair pipeline (issue → samples →
//! activations → strategies → anchors), self-describing artifacts, llama.cpp interop
//! and evaluation. It re-exports what a user needs, so `cargo add masteer-core` is enough.

#![doc = include_str!("../../README.md")]
#![warn(missing_docs)]

pub mod activation_reading;
pub mod adaptive;
pub mod artifact;
pub mod cache;
mod error;
pub mod eval;
pub mod fingerprint;
pub mod grounded;
pub mod interop;
pub mod issue_routing;
pub mod local_generator;
pub mod repair;
pub mod representations;
pub mod router;
pub mod select;
pub mod steered;
pub mod strategy;
pub mod strategy_library;

pub use error::{CoreError, Result};
pub use fingerprint::ModelFingerprint;
pub use masteer_algorithms as algorithms;
pub use masteer_anchor as anchor;
pub use masteer_datagen as datagen;
pub use masteer_models as models;
pub use masteer_models::{
    backend, ChatMessage, GenerateOptions, HookPoint, Hooks, Intervention, InterventionPlan,
    LoadedModel, ModelError, Positions, SeqInput, Site,
};
pub use masteer_types as types;
pub use repair::{IssueInput, Masteer, Repair};
pub use router::Router;
pub use steered::SteeredModel;
pub use strategy::Strategy;
pub use strategy_library::{CalibrationItem, IssueRecord, StrategyLibrary};
