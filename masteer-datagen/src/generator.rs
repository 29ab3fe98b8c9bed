//! Text generators: the LLMs the roles talk to. `TextGenerator` is implemented by an
//! OpenAI-compatible HTTP client ([`crate::http`], feature `http`), and by the local
//! model in `masteer-core`.

use masteer_types::ChatMessage;

use crate::error::Result;

/// Decoding settings of one request.
#[derive(Clone, Debug, PartialEq)]
pub struct GenOptions {
    /// Most tokens in the reply.
    pub max_tokens: usize,
    /// Sampling temperature (0 = greedy).
    pub temperature: f32,
    /// Seed of the sampler.
    pub seed: u64,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            max_tokens: 128,
            temperature: 0.0,
            seed: 0,
        }
    }
}

/// Chat messages in, text out.
pub trait TextGenerator: Send + Sync {
    /// A short description (`smollm2-135m (local)`, `http:model@host`), kept in provenance.
    fn name(&self) -> String;
    /// The reply to a conversation.
    fn generate(&self, messages: &[ChatMessage], opts: &GenOptions) -> Result<String>;
}
