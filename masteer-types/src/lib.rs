//! Shared vocabulary of MASteer-rs: hook sites, hook points, token positions and
//! steering operations.
//!
//! These small types are part of the public API and of the artifact format. They
//! live in their own crate so that the pure-math crates (`masteer-algorithms`,
//! `masteer-anchor`) can name a hook point without depending on burn or on the
//! model crate. `masteer-models` re-exports everything here.
//!
//! ```
//! use masteer_types::{HookPoint, Site};
//!
//! let p: HookPoint = "blocks.12.resid_post".parse()?;
//! assert_eq!(p, Site::ResidPost.at(12));
//! assert!(HookPoint::resid_pre(12).precedes(&p));
//! # Ok::<(), masteer_types::TypesError>(())
//! ```

#![warn(missing_docs)]

mod chat;
pub mod fsutil;
mod generation_options;
mod hook;
mod position;
pub mod progress;

pub use chat::ChatMessage;
pub use generation_options::GenerateOptions;
pub use hook::{HookPoint, Site};
pub use position::Positions;

use serde::{Deserialize, Serialize};

/// How a steering vector changes the activation it is applied to: the one operation
/// vocabulary from the artifact to the model's kernel.
///
/// An operation's payload is always a vector and a coefficient (an intervention plan
/// holds them beside the operation); adding an operation is one variant here and one
/// arm where the model applies it (`masteer-models`' `hooks/apply.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// `x + c · v`.
    #[default]
    Add,
    /// `x − c (x·d) d` with `d` the unit direction of `v`: removes the component along
    /// `d` (all of it at `c = 1`).
    Ablate,
    /// `x + c · v`, then rescaled to the norm `x` had before.
    AddNormPreserving,
}

impl Operation {
    /// Every operation, in the order the kernel applies them within a round.
    pub const ALL: [Operation; 3] = [
        Operation::Add,
        Operation::Ablate,
        Operation::AddNormPreserving,
    ];
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Operation::Add => "add",
            Operation::Ablate => "ablate",
            Operation::AddNormPreserving => "add_norm_preserving",
        })
    }
}

/// Errors raised while parsing the vocabulary from text.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TypesError {
    /// A hook-point name that is neither `blocks.L.site` nor `site(L)`.
    #[error("invalid hook point `{0}`: expected `blocks.<layer>.<site>` or `<site>(<layer>)`, site one of resid_pre, resid_post, attn_heads, attn_out, mlp_out")]
    InvalidHookPoint(String),
    /// A site name that is not one of the five known sites.
    #[error("unknown hook site `{0}`: expected one of resid_pre, resid_post, attn_heads, attn_out, mlp_out")]
    UnknownSite(String),
    /// A position range whose end is before its start.
    #[error("invalid position range {start}..{end}: end must be >= start")]
    InvalidRange {
        /// First position of the range.
        start: usize,
        /// One past the last position of the range.
        end: usize,
    },
}
