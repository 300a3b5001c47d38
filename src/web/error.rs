//! The one HTTP error type: each variant's status, a JSON body
//! `{"error": {"code", "message"}}`. Internal errors are logged, never shown.

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
    DiskFull,
    /// 500: logged, not shown.
    #[error("internal error")]
    Internal(String),
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
            ApiError::DiskFull => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
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
            ApiError::DiskFull => "disk_full",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(error = %detail, "internal error");
        }
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
            tracing::error!(error = %e, "the disk of data_dir is full");
            ApiError::DiskFull
        } else {
            ApiError::Internal(e.to_string())
        }
    }
}
