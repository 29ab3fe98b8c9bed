//! Hook points of the decoder: capture (copy activations to the host) and intervene
//! (per-sequence operations at chosen sites, layers and absolute positions), plus
//! deciders that pick a sequence's plan inside the prefill pass.

pub(crate) mod apply;
mod capture;
mod decider;
mod plan;

pub use capture::{CaptureRow, CaptureSpec, Captures};
pub use decider::{mean_of_rows, Decider, FnDecider};
pub use masteer_types::{HookPoint, Operation, Positions, Site};
pub use plan::{site_width, Intervention, InterventionPlan};
