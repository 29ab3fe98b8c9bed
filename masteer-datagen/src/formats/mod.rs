//! Loaders of public dataset formats, each turning its rows into [`SteerSample`]s
//! (or evaluation items) with typed errors that name the file and line.
//!
//! [`SteerSample`]: crate::SteerSample

pub mod caa;
pub mod claims;
pub mod corrigibility;
pub mod neutral;
pub mod premises;
pub mod repe;
pub mod safety;
pub mod simple_qa;
pub mod truthfulqa;
