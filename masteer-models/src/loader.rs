//! Loading a complete model (decoder, tokenizer, chat template) from a GGUF file or a
//! Hugging Face folder, and the text-level conveniences built on it.

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;

use crate::chat::{ChatMessage, ChatTemplate};
use crate::config::LlamaConfig;
use crate::error::{ModelError, Result};
use crate::generation::{
    self, GenerateOptions, Generation, Hooks, Reply, SeqInput, Session, Steering,
};
use crate::gguf::GgufFile;
use crate::model::Llama;
use crate::tokenizer::Tokenizer;
use crate::weights::{GgufWeights, SafetensorsWeights};

/// Where a model was loaded from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelSource {
    /// A GGUF file.
    Gguf(PathBuf),
    /// A Hugging Face folder (config.json, safetensors, tokenizer.json).
    HfFolder(PathBuf),
}

impl ModelSource {
    /// The path.
    pub fn path(&self) -> &Path {
        match self {
            ModelSource::Gguf(p) | ModelSource::HfFolder(p) => p,
        }
    }

    /// The files holding the weights (hashed for the model fingerprint).
    pub fn weight_files(&self) -> Result<Vec<PathBuf>> {
        match self {
            ModelSource::Gguf(p) => Ok(vec![p.clone()]),
            ModelSource::HfFolder(d) => {
                let mut files: Vec<PathBuf> = std::fs::read_dir(d)
                    .map_err(|e| ModelError::io("listing", d, e))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
                    .collect();
                files.sort();
                Ok(files)
            }
        }
    }
}

/// A model ready to run: decoder, tokenizer and chat template.
#[derive(Clone, Debug)]
pub struct LoadedModel<B: Backend> {
    /// The decoder.
    pub model: Llama<B>,
    /// Its tokenizer.
    pub tokenizer: Tokenizer,
    /// Its chat template, when the files carry one.
    pub chat_template: Option<ChatTemplate>,
    /// Where it came from.
    pub source: ModelSource,
}

impl<B: Backend> LoadedModel<B> {
    /// Load from a GGUF file or a Hugging Face folder.
    pub fn load(path: impl AsRef<Path>, device: &B::Device) -> Result<Self> {
        let path = path.as_ref();
        if path.is_dir() {
            Self::load_hf_folder(path, device)
        } else {
            Self::load_gguf(path, device)
        }
    }

    /// Load the embedded default model (or `$MASTEER_MODEL`), fetching it when needed.
    pub fn load_default(device: &B::Device) -> Result<Self> {
        let path = crate::embedded::resolve(None)?;
        Self::load(path, device)
    }

    /// Load a GGUF file.
    pub fn load_gguf(path: &Path, device: &B::Device) -> Result<Self> {
        let file = GgufFile::open(path)?;
        let config = LlamaConfig::from_gguf(&file)?;
        let tokenizer = Tokenizer::from_gguf(&file)?;
        let chat_template = match file.get("tokenizer.chat_template").and_then(|v| v.as_str()) {
            Some(src) => Some(ChatTemplate::new(
                src,
                &tokenizer.bos_token(),
                &tokenizer.eos_token(),
            )?),
            None => None,
        };
        let weights =
            GgufWeights::new(file, config.num_attention_heads, config.num_key_value_heads);
        let model = Llama::load(config, &weights, device)?;
        Ok(LoadedModel {
            model,
            tokenizer,
            chat_template,
            source: ModelSource::Gguf(path.to_path_buf()),
        })
    }

    /// Load a Hugging Face folder.
    pub fn load_hf_folder(dir: &Path, device: &B::Device) -> Result<Self> {
        let cfg_path = dir.join("config.json");
        let text = std::fs::read_to_string(&cfg_path)
            .map_err(|e| ModelError::io("reading", &cfg_path, e))?;
        let config = LlamaConfig::from_hf_json(&text)?;
        let tokenizer = Tokenizer::from_hf_folder(dir)?;
        let chat_template = read_hf_chat_template(dir)?
            .map(|src| ChatTemplate::new(&src, &tokenizer.bos_token(), &tokenizer.eos_token()))
            .transpose()?;
        let weights = SafetensorsWeights::open_folder(dir)?;
        let model = Llama::load(config, &weights, device)?;
        Ok(LoadedModel {
            model,
            tokenizer,
            chat_template,
            source: ModelSource::HfFolder(dir.to_path_buf()),
        })
    }

    /// Render a conversation with the model's chat template.
    pub fn render_chat(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String> {
        let t = self
            .chat_template
            .as_ref()
            .ok_or_else(|| ModelError::ChatTemplate("the model has no chat template".into()))?;
        t.render(messages, add_generation_prompt)
    }

    /// Token ids of a conversation with the assistant's turn opened.
    pub fn encode_chat(&self, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        let text = self.render_chat(messages, true)?;
        self.tokenizer.encode(&text)
    }

    /// Replies to a batch of conversations: the text-level entry point every steered
    /// or unsteered generation goes through. `steering` sets each sequence's plan (or a
    /// decider that chooses plans inside the prefill pass); `on_token(seq, id)` streams
    /// every new token as soon as it is chosen.
    pub fn generate_chat(
        &self,
        conversations: &[Vec<ChatMessage>],
        steering: Steering<'_>,
        opts: &GenerateOptions,
        on_token: &mut dyn FnMut(usize, u32),
    ) -> Result<Vec<Reply>> {
        let mut inputs = conversations
            .iter()
            .map(|c| Ok(SeqInput::prompt(self.encode_chat(c)?)))
            .collect::<Result<Vec<_>>>()?;
        let mut hooks = Hooks::none();
        match steering {
            Steering::None => {}
            Steering::PerSequence(plans) => {
                if plans.len() != inputs.len() {
                    return Err(ModelError::InvalidInput(format!(
                        "{} plans for {} conversations",
                        plans.len(),
                        inputs.len()
                    )));
                }
                for (i, p) in inputs.iter_mut().zip(plans) {
                    i.plan = p;
                }
            }
            Steering::Adaptive(decider) => hooks = hooks.with_decider(decider),
        }
        // Only the tokens are kept: stopped sequences leave the batch.
        let gens = generation::generate_replies(
            &self.model,
            inputs,
            opts,
            self.tokenizer.eos_ids(),
            &mut hooks,
            on_token,
        )?;
        gens.into_iter()
            .map(|g| {
                Ok(Reply {
                    text: self.decode_reply(&g)?,
                    generation: g,
                })
            })
            .collect()
    }

    /// The token-level layer under [`generate_chat`](Self::generate_chat): generate
    /// from token ids with the model's stop ids and explicit hooks (captures, plans,
    /// a decider), returning the tokens and the session that holds their cache.
    pub fn generate_tokens(
        &self,
        inputs: Vec<SeqInput>,
        opts: &GenerateOptions,
        hooks: &mut Hooks<'_>,
        on_token: &mut dyn FnMut(usize, u32),
    ) -> Result<(Vec<Generation>, Session<B>)> {
        generation::generate(
            &self.model,
            inputs,
            opts,
            self.tokenizer.eos_ids(),
            hooks,
            on_token,
        )
    }

    /// Text of a generation, special tokens removed.
    pub fn decode_reply(&self, g: &Generation) -> Result<String> {
        self.tokenizer.decode(&g.tokens, true)
    }
}

fn read_hf_chat_template(dir: &Path) -> Result<Option<String>> {
    let jinja = dir.join("chat_template.jinja");
    if jinja.exists() {
        return std::fs::read_to_string(&jinja)
            .map(Some)
            .map_err(|e| ModelError::io("reading", &jinja, e));
    }
    let path = dir.join("tokenizer_config.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        ModelError::ChatTemplate(format!("{} is not valid JSON: {e}", path.display()))
    })?;
    Ok(match v.get("chat_template") {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Array(list)) => list
            .iter()
            .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
            .or_else(|| list.first())
            .and_then(|t| t.get("template"))
            .and_then(|t| t.as_str())
            .map(String::from),
        _ => None,
    })
}
