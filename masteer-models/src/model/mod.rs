//! The decoder itself: one file per concern (norm, RoPE, attention, MLP, KV cache), the
//! model's forward pass in `llama.rs` and the per-call state it runs with in
//! `forward_state.rs`. Running batches, generating and scoring live in
//! [`crate::generation`].

mod attention;
#[cfg(feature = "cpu")]
mod cpu;
mod forward_state;
mod kv_cache;
mod linear;
mod llama;
mod mlp;
mod rmsnorm;
mod rope;

pub use forward_state::{ForwardState, Kernels};
pub use kv_cache::KvCache;
pub use llama::Llama;
