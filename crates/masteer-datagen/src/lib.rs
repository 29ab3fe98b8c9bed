//! # masteer-datagen
//!
//! Steering samples from a plain-language issue description (analyst, retriever, writer
//! and reviewer roles over a `TextGenerator`), and loaders for public datasets (CAA,
//! TruthfulQA, RepE facts, XSTest, AdvBench).
//!
//! (Filled by the sample-generation issue; this crate is a placeholder until then.)
