//! The decoder itself: one file per concern (norm, RoPE, attention, MLP, KV cache),
//! the model in `llama.rs`, batched runs in `session.rs`.

mod attention;
#[cfg(feature = "cpu")]
mod cpu;
mod kv_cache;
mod linear;
mod llama;
mod mlp;
mod rmsnorm;
mod rope;
mod session;

pub use kv_cache::KvCache;
pub use llama::Llama;
pub use session::{Hooks, SeqInput, Session};
