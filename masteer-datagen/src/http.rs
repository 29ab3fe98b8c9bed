//! An OpenAI-compatible HTTP client (`/v1/chat/completions`; vLLM, llama.cpp's server,
//! Ollama and hosted APIs speak it), with timeouts, retries and typed errors. Behind the
//! `http` feature, so that library users who do not call a server do not pull ureq.

use std::time::Duration;

use masteer_types::ChatMessage;
use serde_json::{json, Value};

use crate::error::{DatagenError, Result};
use crate::generator::TextGenerator;
use masteer_types::GenerateOptions;

/// Settings of an OpenAI-compatible endpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpConfig {
    /// Base URL, e.g. `http://127.0.0.1:8080` (the client posts to `{base}/v1/chat/completions`).
    pub base_url: String,
    /// Bearer token, if the server wants one.
    pub api_key: Option<String>,
    /// Model name sent in requests.
    pub model: String,
    /// Timeout of one request.
    pub timeout: Duration,
    /// Retries after a 429, a 5xx or a transport error.
    pub max_retries: u32,
    /// Wait before the first retry (doubled at each retry).
    pub backoff: Duration,
}

impl HttpConfig {
    /// Settings from `MASTEER_LLM_BASE_URL`, `MASTEER_LLM_API_KEY` (or `OPENAI_API_KEY`)
    /// and `MASTEER_LLM_MODEL`.
    pub fn from_env() -> Result<Self> {
        let base_url = std::env::var("MASTEER_LLM_BASE_URL").map_err(|_| {
            DatagenError::Generator(
                "set MASTEER_LLM_BASE_URL to an OpenAI-compatible server".into(),
            )
        })?;
        Ok(HttpConfig {
            base_url,
            api_key: std::env::var("MASTEER_LLM_API_KEY")
                .or_else(|_| std::env::var("OPENAI_API_KEY"))
                .ok(),
            model: std::env::var("MASTEER_LLM_MODEL").unwrap_or_else(|_| "default".into()),
            ..Self::new("")
        })
    }

    /// Defaults for a base URL: 60 s timeout, 3 retries from 500 ms.
    pub fn new(base_url: impl Into<String>) -> Self {
        HttpConfig {
            base_url: base_url.into(),
            api_key: None,
            model: "default".into(),
            timeout: Duration::from_secs(60),
            max_retries: 3,
            backoff: Duration::from_millis(500),
        }
    }
}

/// A client of `POST {base}/v1/chat/completions` (vLLM, llama.cpp's server, Ollama,
/// hosted APIs).
pub struct HttpGenerator {
    config: HttpConfig,
    agent: ureq::Agent,
}

impl HttpGenerator {
    /// A client with these settings.
    pub fn new(config: HttpConfig) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(config.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        HttpGenerator { config, agent }
    }

    fn url(&self) -> String {
        format!(
            "{}/v1/chat/completions",
            self.config.base_url.trim_end_matches('/')
        )
    }

    fn once(&self, body: &str) -> std::result::Result<String, (bool, String)> {
        let mut req = self
            .agent
            .post(&self.url())
            .header("Content-Type", "application/json");
        if let Some(k) = &self.config.api_key {
            req = req.header("Authorization", &format!("Bearer {k}"));
        }
        let mut resp = req
            .send(body)
            .map_err(|e| (true, format!("request to {} failed: {e}", self.url())))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| (true, format!("reading the reply from {}: {e}", self.url())))?;
        if status == 429 || status >= 500 {
            return Err((
                true,
                format!(
                    "HTTP {status} from {}: {}",
                    self.url(),
                    text.chars().take(200).collect::<String>()
                ),
            ));
        }
        if status >= 400 {
            return Err((
                false,
                format!(
                    "HTTP {status} from {}: {}",
                    self.url(),
                    text.chars().take(200).collect::<String>()
                ),
            ));
        }
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| (false, format!("malformed JSON from {}: {e}", self.url())))?;
        let content = v
            .get("choices")
            .and_then(|c| c.get(0))
            .and_then(|c| c.get("message"))
            .and_then(|m| m.get("content"))
            .and_then(|c| c.as_str())
            .ok_or_else(|| {
                (
                    false,
                    format!("reply from {} lacks choices[0].message.content", self.url()),
                )
            })?;
        Ok(content.to_string())
    }
}

impl TextGenerator for HttpGenerator {
    fn name(&self) -> String {
        format!("http:{}@{}", self.config.model, self.config.base_url)
    }

    fn generate(&self, messages: &[ChatMessage], opts: &GenerateOptions) -> Result<String> {
        let mut body = json!({
            "model": self.config.model,
            "messages": messages,
            "max_tokens": opts.max_new_tokens,
            "temperature": opts.temperature,
            "seed": opts.seed,
        });
        if let Some(p) = opts.top_p {
            body["top_p"] = json!(p);
        }
        if let Some(k) = opts.top_k {
            body["top_k"] = json!(k);
        }
        let body = body.to_string();
        let mut wait = self.config.backoff;
        let mut attempt = 0;
        loop {
            match self.once(&body) {
                Ok(s) => return Ok(s),
                Err((retryable, msg)) if retryable && attempt < self.config.max_retries => {
                    tracing::warn!(attempt, error = %msg, "retrying");
                    std::thread::sleep(wait);
                    wait *= 2;
                    attempt += 1;
                }
                Err((_, msg)) => return Err(DatagenError::Generator(msg)),
            }
        }
    }
}
