//! Text generators: the LLMs the roles talk to. `TextGenerator` is implemented by an
//! OpenAI-compatible HTTP client ([`crate::http`], feature `http`), and by the local
//! model in `masteer-core`.

use masteer_types::{ChatMessage, GenerateOptions};

use crate::error::Result;

/// Chat messages in, text out.
pub trait TextGenerator: Send + Sync {
    /// A short description (`smollm2-135m (local)`, `http:model@host`), kept in provenance.
    fn name(&self) -> String;
    /// The reply to a conversation.
    fn generate(&self, messages: &[ChatMessage], opts: &GenerateOptions) -> Result<String>;
}
