//! # masteer-datagen
//!
//! Steering samples for MASteer-rs: the data model ([`SteerSample`], [`SampleSet`] with
//! seeded splits, JSONL on disk), loaders for public datasets (CAA A/B, TruthfulQA,
//! RepE facts, XSTest, AdvBench) bundled under `data/` with their licences, and the
//! generation of new samples from a plain-language issue description.
//!
//! ```
//! use masteer_datagen::{SampleKind, SampleSet, SteerSample, Split, SplitFractions};
//!
//! let samples: Vec<SteerSample> = (0..10)
//!     .map(|i| {
//!         SteerSample::new(
//!             format!("claims/{i}"),
//!             format!("I think {i}+1={}. Am I right?", i + 2),
//!             "No, that's not right.",
//!             "Yes, that's right.",
//!             SampleKind::FreeText,
//!         )
//!     })
//!     .collect();
//! let fractions = SplitFractions { train: 6.0, validation: 2.0, test: 2.0 };
//! let set = SampleSet::new("false-claims", samples)?.split(fractions, 0)?;
//! assert_eq!(set.of(Split::Train).len(), 6);
//! # Ok::<(), masteer_datagen::DatagenError>(())
//! ```

#![warn(missing_docs)]

pub mod corpora;
mod error;
pub mod formats;
pub mod generator;
#[cfg(feature = "http")]
pub mod http;
pub mod pipeline;
pub mod prompts;
pub mod retriever;
pub mod roles;
mod sample;
mod set;
mod spec;

pub use error::{DatagenError, Result};
pub use generator::TextGenerator;
#[cfg(feature = "http")]
pub use http::{HttpConfig, HttpGenerator};
pub use masteer_types::ChatMessage;
pub use masteer_types::GenerateOptions;
pub use pipeline::{generate_samples, DatagenConfig, DatagenReport, WrittenForm};
pub use sample::{Provenance, ReviewVerdict, SampleKind, SteerSample};
pub use set::{SampleSet, Split, SplitFractions, SAMPLE_SET_VERSION};
pub use spec::{Dimension, IssueSpec};
