//! The OpenAI wire format: request bodies (with MASteer's `steering` extension),
//! their validation into one internal [`GenerationRequest`], response and stream
//! chunk bodies, and OpenAI-style error bodies naming the offending field.

use masteer_core::ChatMessage;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// Limits a request is checked against.
#[derive(Clone, Debug)]
pub struct RequestLimits {
    /// Largest `max_tokens` a request may ask for.
    pub max_tokens: usize,
    /// `max_tokens` when the request gives none.
    pub default_max_tokens: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_tokens: 1024,
            default_max_tokens: 128,
        }
    }
}

/// A message's content: a string or a list of text parts.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Parts; only `{"type": "text", "text": ...}` parts are accepted.
    Parts(Vec<ContentPart>),
}

/// One part of a message's content.
#[derive(Clone, Debug, Deserialize)]
pub struct ContentPart {
    /// Must be `text`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The text.
    #[serde(default)]
    pub text: Option<String>,
}

/// One message of a chat request.
#[derive(Clone, Debug, Deserialize)]
pub struct WireMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// Its content.
    pub content: Content,
}

/// `stop`: one string or a list.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    /// One stop string.
    One(String),
    /// Several.
    Many(Vec<String>),
}

/// The `steering` extension of a request.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct SteeringRequest {
    /// `adaptive` (the default: the loaded artifact's router decides), `none` or `fixed`.
    #[serde(default)]
    pub mode: Option<String>,
    /// The strategy of `fixed`.
    #[serde(default)]
    pub strategy: Option<String>,
    /// The coefficient of `fixed` (the strategy's own when absent).
    #[serde(default)]
    pub coefficient: Option<f32>,
}

/// A request body of either endpoint (one struct without `flatten`, so that a type
/// error names its field).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RequestBody {
    /// The conversation (chat endpoint).
    #[serde(default)]
    pub messages: Option<Vec<WireMessage>>,
    /// The prompt (completions endpoint): one string, or a list holding one.
    #[serde(default)]
    pub prompt: Option<Stop>,
    /// Model name (accepted, not checked: one model is served).
    #[serde(default)]
    pub model: Option<String>,
    /// Most new tokens.
    #[serde(default)]
    pub max_tokens: Option<i64>,
    /// Newer name of `max_tokens` in the chat API.
    #[serde(default)]
    pub max_completion_tokens: Option<i64>,
    /// Sampling temperature (0 for greedy).
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Nucleus sampling.
    #[serde(default)]
    pub top_p: Option<f32>,
    /// Seed of the sampler.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Stream server-sent events.
    #[serde(default)]
    pub stream: Option<bool>,
    /// Stop strings.
    #[serde(default)]
    pub stop: Option<Stop>,
    /// Number of choices (only 1 is served).
    #[serde(default)]
    pub n: Option<i64>,
    /// MASteer's extension.
    #[serde(default)]
    pub steering: Option<SteeringRequest>,
}

/// How a request is steered, validated.
#[derive(Clone, Debug, PartialEq)]
pub enum SteeringMode {
    /// The loaded artifact's router decides (unsteered when no artifact is loaded).
    Adaptive,
    /// The unsteered model.
    None,
    /// One named strategy, optionally at another coefficient.
    Fixed {
        /// Its name in the artifact.
        strategy: String,
        /// Its coefficient, when overridden.
        coefficient: Option<f32>,
    },
}

/// What the prompt is.
#[derive(Clone, Debug, PartialEq)]
pub enum Prompt {
    /// A conversation, rendered with the model's chat template.
    Chat(Vec<ChatMessage>),
    /// Raw text.
    Text(String),
}

/// A request after parsing and validation: what the engine needs.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerationRequest {
    /// The prompt.
    pub prompt: Prompt,
    /// Most new tokens.
    pub max_tokens: usize,
    /// 0 for greedy.
    pub temperature: f32,
    /// Nucleus sampling.
    pub top_p: Option<f32>,
    /// Seed of the sampler.
    pub seed: u64,
    /// Stream the reply.
    pub stream: bool,
    /// Stop strings.
    pub stop: Vec<String>,
    /// Steering.
    pub steering: SteeringMode,
    /// Model name the client asked for.
    pub model: Option<String>,
}

fn parse_json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::invalid(None, "the request body is empty"));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let param = (path != "." && !path.is_empty()).then_some(path);
        let message = if inner.is_syntax() || inner.is_eof() {
            format!("the body is not valid JSON: {inner}")
        } else {
            match &param {
                Some(p) => format!("invalid value for '{p}': {inner}"),
                None => format!("invalid request: {inner}"),
            }
        };
        ApiError::invalid(param.as_deref(), message)
    })
}

/// Parse and validate a chat completion body.
pub fn parse_chat(body: &[u8], limits: &RequestLimits) -> Result<GenerationRequest, ApiError> {
    let b: RequestBody = parse_json(body)?;
    let Some(wire) = b.messages.clone() else {
        return Err(ApiError::invalid(
            Some("messages"),
            "'messages' is required",
        ));
    };
    if wire.is_empty() {
        return Err(ApiError::invalid(
            Some("messages"),
            "'messages' must hold at least one message",
        ));
    }
    let mut messages = Vec::with_capacity(wire.len());
    for (i, m) in wire.into_iter().enumerate() {
        if !matches!(m.role.as_str(), "system" | "user" | "assistant") {
            return Err(ApiError::invalid(
                Some(&format!("messages[{i}].role")),
                format!("role '{}' is not one of system, user, assistant", m.role),
            ));
        }
        let content = match m.content {
            Content::Text(t) => t,
            Content::Parts(parts) => {
                let mut text = String::new();
                for (j, p) in parts.into_iter().enumerate() {
                    match (p.kind.as_str(), p.text) {
                        ("text", Some(t)) => text.push_str(&t),
                        _ => return Err(ApiError::invalid(
                            Some(&format!("messages[{i}].content[{j}]")),
                            "only text parts ({\"type\": \"text\", \"text\": ...}) are supported",
                        )),
                    }
                }
                text
            }
        };
        messages.push(ChatMessage::new(m.role, content));
    }
    finish(Prompt::Chat(messages), b, limits)
}

/// Parse and validate a (text) completion body.
pub fn parse_completion(
    body: &[u8],
    limits: &RequestLimits,
) -> Result<GenerationRequest, ApiError> {
    let b: RequestBody = parse_json(body)?;
    let prompt = match b.prompt.clone() {
        None => return Err(ApiError::invalid(Some("prompt"), "'prompt' is required")),
        Some(Stop::One(p)) => p,
        Some(Stop::Many(mut v)) if v.len() == 1 => v.remove(0),
        Some(Stop::Many(v)) => {
            return Err(ApiError::invalid(
                Some("prompt"),
                format!("one prompt per request is served, not {}", v.len()),
            ))
        }
    };
    if prompt.is_empty() {
        return Err(ApiError::invalid(Some("prompt"), "'prompt' is empty"));
    }
    finish(Prompt::Text(prompt), b, limits)
}

fn finish(
    prompt: Prompt,
    c: RequestBody,
    limits: &RequestLimits,
) -> Result<GenerationRequest, ApiError> {
    let (field, asked) = match (c.max_completion_tokens, c.max_tokens) {
        (Some(m), _) => ("max_completion_tokens", Some(m)),
        (None, m) => ("max_tokens", m),
    };
    let max_tokens = match asked {
        None => limits.default_max_tokens.min(limits.max_tokens),
        Some(m) if m < 1 => {
            return Err(ApiError::invalid(
                Some(field),
                format!("'{field}' must be at least 1, got {m}"),
            ))
        }
        Some(m) if m as u64 > limits.max_tokens as u64 => {
            return Err(ApiError::invalid(
                Some(field),
                format!(
                    "'{field}' is {m}, over this server's limit of {}",
                    limits.max_tokens
                ),
            ))
        }
        Some(m) => m as usize,
    };
    let temperature = c.temperature.unwrap_or(0.0);
    if !temperature.is_finite() || !(0.0..=2.0).contains(&temperature) {
        return Err(ApiError::invalid(
            Some("temperature"),
            format!("'temperature' must be between 0 and 2, got {temperature}"),
        ));
    }
    if let Some(p) = c.top_p {
        if !p.is_finite() || p <= 0.0 || p > 1.0 {
            return Err(ApiError::invalid(
                Some("top_p"),
                format!("'top_p' must be in (0, 1], got {p}"),
            ));
        }
    }
    if let Some(n) = c.n {
        if n != 1 {
            return Err(ApiError::invalid(
                Some("n"),
                format!("one choice per request is served ('n' must be 1, got {n})"),
            ));
        }
    }
    let stop = match c.stop {
        None => Vec::new(),
        Some(Stop::One(s)) => vec![s],
        Some(Stop::Many(v)) => v,
    };
    if stop.len() > 4 || stop.iter().any(String::is_empty) {
        return Err(ApiError::invalid(
            Some("stop"),
            "'stop' takes up to 4 non-empty strings",
        ));
    }
    let steering = parse_steering(c.steering)?;
    Ok(GenerationRequest {
        prompt,
        max_tokens,
        temperature,
        top_p: c.top_p,
        seed: c.seed.unwrap_or(0),
        stream: c.stream.unwrap_or(false),
        stop,
        steering,
        model: c.model,
    })
}

fn parse_steering(s: Option<SteeringRequest>) -> Result<SteeringMode, ApiError> {
    let Some(s) = s else {
        return Ok(SteeringMode::Adaptive);
    };
    if let Some(c) = s.coefficient {
        if !c.is_finite() {
            return Err(ApiError::invalid(
                Some("steering.coefficient"),
                format!("'steering.coefficient' must be finite, got {c}"),
            ));
        }
    }
    match s.mode.as_deref().unwrap_or(if s.strategy.is_some() {
        "fixed"
    } else {
        "adaptive"
    }) {
        "adaptive" => Ok(SteeringMode::Adaptive),
        "none" => Ok(SteeringMode::None),
        "fixed" => match s.strategy {
            Some(strategy) if !strategy.is_empty() => Ok(SteeringMode::Fixed {
                strategy,
                coefficient: s.coefficient,
            }),
            _ => Err(ApiError::invalid(
                Some("steering.strategy"),
                "'steering.mode' fixed needs 'steering.strategy'",
            )),
        },
        other => Err(ApiError::invalid(
            Some("steering.mode"),
            format!("'steering.mode' is '{other}', not one of adaptive, none, fixed"),
        )),
    }
}

/// The decision a request was steered by, returned in responses and logged.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SteeringDecision {
    /// `adaptive`, `none` or `fixed`.
    pub mode: String,
    /// The strategy applied, or `null` for none.
    pub strategy: Option<String>,
    /// Per strategy: similarity to its anchors (or the gate's probability).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub similarities: Vec<(String, f32)>,
    /// Similarity to the no-steering anchors (or the gate's threshold).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub none_similarity: Option<f32>,
    /// Lead of the chosen strategy over not steering.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub margin: Option<f32>,
    /// The coefficient of a fixed strategy.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub coefficient: Option<f32>,
}

/// Token counts of a response.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Generated tokens.
    pub completion_tokens: usize,
    /// Their sum.
    pub total_tokens: usize,
}
