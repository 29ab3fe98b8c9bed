//! The local model as a text generator for sample generation (`masteer-datagen`'s roles).

use burn::tensor::backend::Backend;
use masteer_datagen::{DatagenError, GenOptions, TextGenerator};
use masteer_models::{ChatMessage, GenerateOptions, Hooks, LoadedModel, SeqInput};

/// A [`TextGenerator`] running a loaded model (the embedded SmolLM2 by default).
pub struct LocalGenerator<'a, B: Backend> {
    lm: &'a LoadedModel<B>,
    name: String,
}

impl<'a, B: Backend> LocalGenerator<'a, B> {
    /// Generate with `lm`; `name` goes into the samples' provenance.
    pub fn new(lm: &'a LoadedModel<B>, name: impl Into<String>) -> Self {
        LocalGenerator {
            lm,
            name: name.into(),
        }
    }
}

impl<B: Backend> TextGenerator for LocalGenerator<'_, B> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn generate(
        &self,
        messages: &[ChatMessage],
        opts: &GenOptions,
    ) -> masteer_datagen::Result<String> {
        let err = |e: masteer_models::ModelError| DatagenError::Generator(e.to_string());
        let ids = self.lm.encode_chat(messages).map_err(err)?;
        let g = GenerateOptions {
            max_new_tokens: opts.max_tokens,
            temperature: opts.temperature,
            top_p: Some(0.95),
            top_k: None,
            seed: opts.seed,
            stop_ids: None,
        };
        let (gens, _) = self
            .lm
            .generate_tokens(
                vec![SeqInput::prompt(ids)],
                &g,
                &mut Hooks::none(),
                &mut |_, _| {},
            )
            .map_err(err)?;
        self.lm.decode_reply(&gens[0]).map_err(err)
    }
}
