//! Errors: [`ApiError`] is what a client receives (an OpenAI-style body naming the
//! field); [`ServerError`] is what starting or reloading the server reports.

use std::path::PathBuf;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Errors of starting the server or reloading its artifact.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listening address could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The decision log could not be opened.
    #[error("opening the decision log {path}: {source}")]
    DecisionLog {
        /// Its path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The artifact could not be loaded or does not fit the model.
    #[error("loading the artifact {path}: {source}")]
    Artifact {
        /// Its directory.
        path: PathBuf,
        /// Why.
        source: masteer_core::CoreError,
    },
    /// The model failed.
    #[error(transparent)]
    Core(#[from] masteer_core::CoreError),
    /// Serving failed.
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

/// An error answered to a client: status, OpenAI-style body, and `Retry-After` when
/// the server is overloaded.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// What went wrong, in words.
    pub message: String,
    /// The request field at fault, as a path (`messages[0].content`).
    pub param: Option<String>,
    /// OpenAI's error type (`invalid_request_error`, `server_error`, ...).
    pub kind: &'static str,
    /// Seconds a client should wait before retrying (overload only).
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

impl ApiError {
    /// 400: the request is malformed or out of bounds.
    pub fn invalid(param: Option<&str>, message: impl Into<String>) -> Self {
        ApiError {
            status: 400,
            message: message.into(),
            param: param.map(String::from),
            kind: "invalid_request_error",
            retry_after: None,
        }
    }

    /// 503 with `Retry-After`: the queue is full.
    pub fn overloaded(retry_after: u64) -> Self {
        ApiError {
            status: 503,
            message: "the server is at capacity; retry later".into(),
            param: None,
            kind: "server_overloaded",
            retry_after: Some(retry_after),
        }
    }

    /// 500: something failed inside the server.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError {
            status: 500,
            message: message.into(),
            param: None,
            kind: "server_error",
            retry_after: None,
        }
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: 404,
            message: message.into(),
            param: None,
            kind: "not_found_error",
            retry_after: None,
        }
    }

    /// The JSON body.
    pub fn body(&self) -> String {
        let code = match self.status {
            400 => Some("invalid_request"),
            503 => Some("overloaded"),
            _ => None,
        };
        serde_json::to_string(&Body {
            error: Inner {
                message: &self.message,
                kind: self.kind,
                param: self.param.as_deref(),
                code,
            },
        })
        .unwrap_or_else(|_| "{\"error\":{\"message\":\"error\"}}".into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut r = (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            self.body(),
        )
            .into_response();
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        r
    }
}
