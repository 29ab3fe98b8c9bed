//! # masteer-core
//!
//! The facade of MASteer-rs: the end-to-end repair pipeline (issue → samples →
//! activations → strategies → anchors), self-describing artifacts, llama.cpp interop
//! and evaluation. It re-exports what a user needs, so `cargo add masteer-core` is enough.

#![doc = include_str!("../../README.md")]
#![warn(missing_docs)]

pub mod activations;
pub mod adaptive;
pub mod cache;
pub mod calibrate;
mod error;
pub mod eval;
pub mod fingerprint;
pub mod generator;
pub mod grounded;
pub mod interop;
pub mod library;
pub mod pipeline;
pub mod route;
pub mod select;
pub mod steered;
pub mod strategy;

pub use error::{CoreError, Result};
pub use fingerprint::ModelFingerprint;
pub use library::{CalibrationItem, IssueRecord, StrategyLibrary};
pub use masteer_algorithms as algorithms;
pub use masteer_anchor as anchor;
pub use masteer_datagen as datagen;
pub use masteer_models as models;
pub use masteer_models::{
    backend, ChatMessage, GenerateOptions, HookPoint, Hooks, Intervention, InterventionPlan,
    LoadedModel, ModelError, Positions, SeqInput, Site,
};
pub use masteer_types as types;
pub use pipeline::{IssueInput, Masteer, Repair};
pub use steered::SteeredModel;
pub use strategy::Strategy;
