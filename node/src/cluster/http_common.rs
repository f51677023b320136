//! What every HTTP surface of a node (management API, service API, relay, launcher)
//! shares: the JSON error answer, the bearer-token check and the open CORS layer.

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use shared::api::ErrorBody;

/// An error answer.
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorBody { error: self.1 })).into_response()
    }
}

/// Whether the request carries `Authorization: Bearer <token>` (compared in constant
/// time, so response timing does not reveal how much of a guess was right).
pub fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|p| {
            p.len() == token.len()
                && p.bytes()
                    .zip(token.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        })
}

/// Refuses a request without the bearer token when one is set (`None`: demo mode,
/// open).
pub fn require_token(token: Option<&str>, headers: &HeaderMap) -> Result<(), ApiError> {
    match token {
        Some(token) if !bearer_matches(headers, token) => Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "a valid bearer token is required".into(),
        )),
        _ => Ok(()),
    }
}

/// Answers allow any origin, method and header (CORS): the page itself uses relative
/// URLs, but scripts and `trunk serve` call from elsewhere. Mutating endpoints still
/// need the token outside demo mode.
pub fn any_origin() -> tower_http::cors::CorsLayer {
    tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods(tower_http::cors::Any)
        .allow_headers(tower_http::cors::Any)
}
