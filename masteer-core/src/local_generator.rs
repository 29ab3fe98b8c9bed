//! The local model as a text generator for sample generation (`masteer-datagen`'s roles).

use std::sync::Arc;

use burn::tensor::backend::Backend;
use masteer_datagen::{DatagenError, TextGenerator};
use masteer_models::{ChatMessage, GenerateOptions, LoadedModel, Steering};

/// A [`TextGenerator`] running a loaded model (the embedded SmolLM2 by default),
/// through the model's one text-level entry point,
/// [`LoadedModel::generate_chat`].
pub struct LocalGenerator<B: Backend> {
    lm: Arc<LoadedModel<B>>,
    name: String,
}

impl<B: Backend> LocalGenerator<B> {
    /// Generate with `lm` (an `Arc`, or a model moved in; cloning a model shares its
    /// weights); `name` goes into the samples' provenance.
    pub fn new(lm: impl Into<Arc<LoadedModel<B>>>, name: impl Into<String>) -> Self {
        LocalGenerator {
            lm: lm.into(),
            name: name.into(),
        }
    }
}

impl<B: Backend> TextGenerator for LocalGenerator<B> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn generate(
        &self,
        messages: &[ChatMessage],
        opts: &GenerateOptions,
    ) -> masteer_datagen::Result<String> {
        let mut replies = self
            .lm
            .generate_chat(&[messages.to_vec()], Steering::None, opts, &mut |_, _| {})
            .map_err(|e| DatagenError::Generator(e.to_string()))?;
        Ok(replies.pop().map(|r| r.text).unwrap_or_default())
    }
}
