//! The transport keyring over HTTP, as Serf's `keys` command: list the installed keys
//! (their fingerprints only), install one, make one primary (used for new
//! connections), remove one (connections opened with it close and reopen with the
//! primary). Changes need the bearer token outside demo mode.
//!
//! A rotation without downtime: install the new key on every node, make it primary on
//! every node, then remove the old one everywhere.

use crate::cluster::http_common::{require_token, ApiError};
use crate::cluster::link::{Keyring, KeyringError};
use crate::cluster::transport::Transport;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, put};
use axum::{Json, Router};
use shared::api::{InstallKey, KeyJson, KeysResponse};
use std::sync::{Arc, RwLock};

/// What the keyring routes reach.
#[derive(Clone)]
pub struct KeysState {
    /// The transport whose keyring they change.
    pub transport: Arc<Transport>,
    /// Bearer token for changes; `None` in demo mode.
    pub token: Option<String>,
}

/// The keyring routes.
pub fn routes(state: KeysState) -> Router {
    Router::new()
        .route("/cluster/keys", get(list).post(install))
        .route("/cluster/keys/{id}/primary", put(make_primary))
        .route("/cluster/keys/{id}", delete(remove))
        .with_state(state)
}

fn authorize(state: &KeysState, headers: &HeaderMap) -> Result<(), ApiError> {
    require_token(state.token.as_deref(), headers)
}

fn keyring(state: &KeysState) -> Result<&Arc<RwLock<Keyring>>, ApiError> {
    state.transport.keyring().ok_or_else(|| {
        ApiError(
            StatusCode::CONFLICT,
            "transport encryption is off on this node: it has no keyring".into(),
        )
    })
}

fn listed(keyring: &Keyring) -> Json<KeysResponse> {
    let keys = keyring
        .ids()
        .into_iter()
        .map(|(id, primary)| KeyJson { id, primary })
        .collect();
    Json(KeysResponse { keys })
}

impl From<KeyringError> for ApiError {
    fn from(e: KeyringError) -> Self {
        let status = match e {
            KeyringError::Unknown(_) => StatusCode::NOT_FOUND,
            KeyringError::Primary(_) => StatusCode::CONFLICT,
        };
        ApiError(status, e.to_string())
    }
}

async fn list(State(state): State<KeysState>) -> Result<Json<KeysResponse>, ApiError> {
    Ok(listed(&keyring(&state)?.read().expect("keyring lock")))
}

async fn install(
    State(state): State<KeysState>,
    headers: HeaderMap,
    body: Result<Json<InstallKey>, JsonRejection>,
) -> Result<(StatusCode, Json<KeysResponse>), ApiError> {
    authorize(&state, &headers)?;
    let Json(InstallKey { secret }) =
        body.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    if secret.len() < 8 || secret.len() > 1024 {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "a secret has 8 to 1024 characters".into(),
        ));
    }
    let key = state.transport.key_for(&secret);
    let mut keyring = keyring(&state)?.write().expect("keyring lock");
    let id = keyring.install(key);
    tracing::info!(key = %id, "transport key installed");
    Ok((StatusCode::CREATED, listed(&keyring)))
}

async fn make_primary(
    State(state): State<KeysState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<KeysResponse>, ApiError> {
    change(
        &state,
        &headers,
        &id,
        Keyring::use_primary,
        "transport key made primary",
    )
}

async fn remove(
    State(state): State<KeysState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<KeysResponse>, ApiError> {
    let what = "transport key removed: links opened with it close";
    change(&state, &headers, &id, Keyring::remove, what)
}

/// An authorized change to the key `id`, logged as `what`; the keyring after it.
fn change(
    state: &KeysState,
    headers: &HeaderMap,
    id: &str,
    apply: fn(&mut Keyring, &str) -> Result<(), KeyringError>,
    what: &str,
) -> Result<Json<KeysResponse>, ApiError> {
    authorize(state, headers)?;
    let mut keyring = keyring(state)?.write().expect("keyring lock");
    apply(&mut keyring, id)?;
    tracing::info!(key = %id, "{what}");
    Ok(listed(&keyring))
}
