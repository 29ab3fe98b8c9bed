//! # masteer-datagen
//!
//! Steering samples for MASteer-rs: the data model ([`SteerSample`], [`SampleSet`] with
//! seeded splits, JSONL on disk), loaders for public datasets (CAA A/B, TruthfulQA,
//! RepE facts, XSTest, AdvBench) bundled under `data/` with their licences, and the
//! generation of new samples from a plain-language issue description.

pub mod corpora;
mod error;
pub mod formats;
mod sample;
mod set;

pub use error::{DatagenError, Result};
pub use masteer_types::ChatMessage;
pub use sample::{Provenance, ReviewVerdict, SampleKind, SteerSample};
pub use set::{SampleSet, Split, SplitFractions, SAMPLE_SET_VERSION};
