//! # masteer-algorithms
//!
//! The steering algorithm library of MASteer-rs. An algorithm is a value holding its
//! settings that fits [`ContrastActivations`] (paired positive/negative activations per
//! hook point) into a [`SteeringVector`] (per layer a unit direction, a scale and
//! diagnostics). Built in: [`MeanDifference`] (CAA), [`Pca`] (RepE, three centring
//! variants), [`LinearProbe`] and [`Iti`]. Implement [`SteeringAlgorithm`] and
//! [`AlgorithmLibrary::register`] it to add your own; nothing else changes.
//!
//! Pure math on `ndarray`: no burn, no model. Hook-point vocabulary comes from
//! `masteer-types`, shared with `masteer-models`.

#![warn(missing_docs)]

mod activations;
mod algorithm;
pub mod algorithms;
mod diagnostics;
mod error;
mod library;
pub mod preprocess;
pub mod selection;
mod vector;

pub use activations::{ContrastActivations, ContrastSplit, PairedRows};
pub use algorithm::{fit_per_layer, ActivationNeeds, SteeringAlgorithm};
pub use algorithms::{Iti, ItiDirection, LinearProbe, MeanDifference, Pca, PcaVariant};
pub use error::{AlgorithmError, Result};
pub use library::{AlgorithmLibrary, FitOutcome};
pub use masteer_types::{HookPoint, OperationKind, Positions, Site};
pub use preprocess::{GroupProjection, PairGroups};
pub use selection::{rank_layers, sweep, GridPoint, Selection};
pub use vector::{HeadDiagnostics, LayerDiagnostics, LayerVector, SteeringVector};

/// ndarray, re-exported so that a custom algorithm needs no extra dependency.
pub use ndarray;
