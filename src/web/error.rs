//! The one HTTP error type: each variant's status, a JSON body
//! `{"error": {"code", "message"}}`. Internal errors keep their source;
//! they are logged once, with their whole chain of causes, where they are
//! answered ([`ApiError::log`]), and never shown to the client.
//!
//! It is also the one mapping of an [`EngineError`] for the HTML pages
//! ([`for_page`]): the response pages and the dashboard's forms say in
//! French what the API says in JSON, from the same variant.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::engine::EngineError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: malformed request (bad JSON, bad query).
    #[error("{0}")]
    BadRequest(String),
    /// 401: no or wrong bearer token.
    #[error("a valid API token is required (Authorization: Bearer …)")]
    Unauthorized,
    /// 404
    #[error("{0}")]
    NotFound(String),
    /// 409
    #[error("{0}")]
    Conflict(String),
    /// 410
    #[error("{0}")]
    Gone(String),
    /// 413: body over 64 KiB.
    #[error("the request body is larger than 64 KiB")]
    TooLarge,
    /// 415
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: well-formed, but not allowed by the plan.
    #[error("{0}")]
    Unprocessable(String),
    /// 507: the database's disk is full; nothing was recorded.
    #[error(
        "the disk holding Vigie's database is full: nothing was recorded, free some space and try again"
    )]
    DiskFull(#[source] StoreError),
    /// 500: the database failed; logged, not shown.
    #[error("internal error")]
    Store(#[source] StoreError),
    /// 500: anything else of ours; logged, not shown.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Gone(_) => StatusCode::GONE,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::DiskFull(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Store(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::Gone(_) => "gone",
            ApiError::TooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Unprocessable(_) => "unprocessable",
            ApiError::DiskFull(_) => "disk_full",
            ApiError::Store(_) | ApiError::Internal(_) => "internal",
        }
    }

    /// Whether the error is ours (5xx): logged, never shown.
    pub fn is_internal(&self) -> bool {
        self.status().is_server_error()
    }

    /// Logs an internal error once, with its whole chain of causes
    /// (`error.sources` in the log line); `what` names the request.
    pub fn log(&self, what: &str) {
        if !self.is_internal() {
            return;
        }
        let error: &(dyn std::error::Error + 'static) = self;
        if matches!(self, ApiError::DiskFull(_)) {
            tracing::error!(error, what, "the disk of data_dir is full");
        } else {
            tracing::error!(error, what, "internal error");
        }
    }
}

/// An engine error as an HTML page tells it: the API's mapping
/// ([`ApiError::from`]), an internal one logged here with its causes.
pub fn for_page(e: EngineError, what: &str) -> ApiError {
    let e = ApiError::from(e);
    e.log(what);
    e
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log("API request");
        let mut resp = (
            self.status(),
            Json(json!({"error": {"code": self.code(), "message": self.to_string()}})),
        )
            .into_response();
        if matches!(self, ApiError::Unauthorized) {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::NotFound(m) => ApiError::NotFound(m),
            EngineError::Gone(m) => ApiError::Gone(m),
            EngineError::Invalid(m) => ApiError::Unprocessable(m),
            EngineError::Conflict(m) => ApiError::Conflict(m),
            EngineError::Store(e) => ApiError::from(e),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_disk_full() {
            ApiError::DiskFull(e)
        } else {
            ApiError::Store(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error;

    use super::*;

    #[test]
    fn an_internal_error_keeps_its_cause_and_shows_none_of_it() {
        let e = ApiError::from(EngineError::Store(StoreError::Join(
            "the thread stopped".into(),
        )));
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.to_string(), "internal error");
        let cause = e.source().expect("the store error is kept as the source");
        assert_eq!(
            cause.to_string(),
            "database task failed: the thread stopped"
        );
    }

    #[test]
    fn a_refusal_of_the_engine_is_the_users_with_its_message() {
        let e = for_page(EngineError::Gone("event 3 is resolved".into()), "test");
        assert!(!e.is_internal());
        assert_eq!(e.status(), StatusCode::GONE);
        assert_eq!(e.to_string(), "event 3 is resolved");
    }
}
