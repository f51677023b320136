//! The service's HTTP API on nodes with role `api`: catalogue search, a user's
//! history, recording a watch, recommendations; and `/api/dashboard`, which tells the
//! web app where every node's API is.
//!
//! Input is checked before anything happens: ids must be numbers of known users and
//! videos, `n` must be 1 to 100, query parameters must be known ones, bodies must be
//! the documented JSON. Every refusal is a 4xx with a JSON `{"error": ...}`, and
//! changes nothing. A watch is answered 201 only once a majority of replicas hold it
//! on disk; recommendations fall back to the popularity list, flagged `degraded`,
//! when no worker answers in time, so a request never hangs.

use super::metrics::{Attempts, Degraded};
use super::routing::Routed;
use super::{Service, API_ROLE};
use crate::app::catalog::Video;
use crate::cluster::http_common::ApiError;
use crate::cluster::runtime::clock_ms;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use shared::api::{
    DashboardInfo, HistoryResponse, PeerHttp, RecommendationsResponse, RecommendedJson,
    ReplicaStatus, VideoJson, VideosPage, WatchRequest, WatchResponse, WatchedJson,
};
use shared::service::{ServiceBody, Watch, MAX_RECOMMENDATIONS};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

/// Videos per catalogue page.
pub const PAGE_SIZE: u32 = 20;

/// Longest search text accepted.
const MAX_QUERY_LEN: usize = 200;

/// The service routes.
pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/api/dashboard", get(dashboard))
        .route("/api/replica", get(replica))
        .route("/api/genres", get(genres))
        .route("/api/videos", get(videos))
        .route("/api/videos/{id}", get(video))
        .route("/api/users/{id}/history", get(history))
        .route("/api/users/{id}/watched", post(watched))
        .route("/api/recommendations/{user}", get(recommendations))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&service),
            super::metrics::count,
        ))
        .with_state(service)
}

fn error(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError(status, message.into())
}

fn require_api_role(service: &Service) -> Result<(), ApiError> {
    if service.has_role(API_ROLE) {
        Ok(())
    } else {
        Err(error(
            StatusCode::NOT_FOUND,
            "this node does not have the `api` role; ask an api node",
        ))
    }
}

fn parse_id(text: &str, what: &str) -> Result<u32, ApiError> {
    text.parse::<u32>().map_err(|_| {
        error(
            StatusCode::BAD_REQUEST,
            format!("`{text}` is not a {what} id (a positive integer)"),
        )
    })
}

fn known_user(service: &Service, text: &str) -> Result<u32, ApiError> {
    let user = parse_id(text, "user")?;
    if service.library.knows_user(user) {
        Ok(user)
    } else {
        Err(error(StatusCode::NOT_FOUND, format!("no user {user}")))
    }
}

fn video_json(v: &Video) -> VideoJson {
    VideoJson {
        id: v.id,
        title: v.title.clone(),
        year: v.year,
        genres: v.genres.clone(),
    }
}

fn video_by_id(service: &Service, id: u32) -> Option<VideoJson> {
    service.library.videos.get(&id).map(video_json)
}

async fn dashboard(State(service): State<Arc<Service>>) -> Json<DashboardInfo> {
    let id = &service.identity;
    Json(DashboardInfo {
        self_node: id.me.address.to_string(),
        http: id.http.clone(),
        roles: id.roles.iter().cloned().collect(),
        demo: id.demo,
        launcher: id.launcher.clone(),
        monitored_by: Some(id.monitored_by),
        peers: service
            .peers_http()
            .into_iter()
            .map(|(node, http)| PeerHttp {
                node: node.to_string(),
                http,
            })
            .collect(),
        max_user_id: service
            .library
            .base_history
            .keys()
            .copied()
            .max()
            .unwrap_or(0),
    })
}

async fn replica(State(service): State<Arc<Service>>) -> Json<ReplicaStatus> {
    let digest = service
        .store
        .digests()
        .iter()
        .enumerate()
        .fold(0u64, |acc, (i, d)| acc ^ d.rotate_left(i as u32));
    Json(ReplicaStatus {
        replica: service
            .view()
            .replicas
            .contains(&service.identity.me.address),
        ready: service.is_ready(),
        watches: service.store.len() as u64,
        digest: format!("{digest:016x}"),
    })
}

async fn genres(State(service): State<Arc<Service>>) -> Result<Json<Vec<String>>, ApiError> {
    require_api_role(&service)?;
    Ok(Json(service.library.genres.clone()))
}

/// `GET /api/videos` parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VideoQuery {
    query: Option<String>,
    genre: Option<String>,
    page: Option<String>,
}

async fn videos(
    State(service): State<Arc<Service>>,
    params: Result<Query<VideoQuery>, QueryRejection>,
) -> Result<Json<VideosPage>, ApiError> {
    require_api_role(&service)?;
    let Query(params) = params.map_err(|e| error(StatusCode::BAD_REQUEST, e.body_text()))?;
    let page = match params.page.as_deref() {
        None | Some("") => 1,
        Some(text) => match text.parse::<u32>() {
            Ok(p) if p >= 1 => p,
            _ => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    format!("page `{text}` must be a number from 1"),
                ))
            }
        },
    };
    let query = params.query.unwrap_or_default().trim().to_lowercase();
    if query.len() > MAX_QUERY_LEN {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!("query longer than {MAX_QUERY_LEN} characters"),
        ));
    }
    let genre = params.genre.unwrap_or_default().trim().to_string();
    if !genre.is_empty()
        && !service
            .library
            .genres
            .iter()
            .any(|g| g.eq_ignore_ascii_case(&genre))
    {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!("unknown genre `{genre}` (see /api/genres)"),
        ));
    }
    let matching: Vec<&Video> = service
        .library
        .videos
        .values()
        .filter(|v| query.is_empty() || v.title.to_lowercase().contains(&query))
        .filter(|v| genre.is_empty() || v.genres.iter().any(|g| g.eq_ignore_ascii_case(&genre)))
        .collect();
    let total = matching.len() as u32;
    let items = matching
        .into_iter()
        .skip(((page - 1) as usize).saturating_mul(PAGE_SIZE as usize))
        .take(PAGE_SIZE as usize)
        .map(video_json)
        .collect();
    Ok(Json(VideosPage {
        items,
        page,
        page_size: PAGE_SIZE,
        total,
    }))
}

async fn video(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
) -> Result<Json<VideoJson>, ApiError> {
    require_api_role(&service)?;
    let id = parse_id(&id, "video")?;
    video_by_id(&service, id)
        .map(Json)
        .ok_or_else(|| error(StatusCode::NOT_FOUND, format!("no video {id}")))
}

/// Whether this node reaches a majority of the replicas (without one, every routed
/// request would wait out its deadline and fail).
fn reaches_majority(service: &Service) -> bool {
    let view = service.view();
    view.reachable_replicas >= view.majority()
}

/// A 503 at once where no majority is reachable, so a client fails over to another
/// node now rather than after the deadline.
fn require_majority(service: &Service) -> Result<(), ApiError> {
    if reaches_majority(service) {
        return Ok(());
    }
    let view = service.view();
    Err(error(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "this node reaches {} of {} replicas, not a majority: ask another node",
            view.reachable_replicas,
            view.replicas.len()
        ),
    ))
}

fn unavailable(what: &str, failures: &[String]) -> ApiError {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "{what}: no worker answered in time ({})",
            failures.last().map(String::as_str).unwrap_or("no attempt")
        ),
    )
}

async fn history(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_api_role(&service)?;
    let user = known_user(&service, &id)?;
    require_majority(&service)?;
    let routed = service
        .route(user, ServiceBody::ReadHistory { id: 0, user })
        .await;
    let Some((
        worker,
        ServiceBody::HistoryRead {
            watches,
            replicas_read,
            ..
        },
    )) = routed.answer
    else {
        return Err(unavailable("history", &routed.failures));
    };
    let recorded: BTreeSet<u32> = watches.iter().map(|w| w.video).collect();
    let mut watched: Vec<WatchedJson> = service
        .library
        .base_history
        .get(&user)
        .into_iter()
        .flatten()
        .filter(|v| !recorded.contains(v))
        .filter_map(|v| video_by_id(&service, *v))
        .map(|video| WatchedJson {
            video,
            recorded_at_ms: None,
        })
        .collect();
    let mut recorded_watches = watches;
    recorded_watches.sort_by_key(|w| (w.at_ms, w.video));
    watched.extend(recorded_watches.iter().filter_map(|w| {
        video_by_id(&service, w.video).map(|video| WatchedJson {
            video,
            recorded_at_ms: Some(w.at_ms),
        })
    }));
    let mut response = Json(HistoryResponse {
        user,
        watched,
        served_by: worker.to_string(),
        replicas_read,
    })
    .into_response();
    response.extensions_mut().insert(Attempts(routed.attempts));
    Ok(response)
}

async fn watched(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
    body: Result<Json<WatchRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_api_role(&service)?;
    let user = known_user(&service, &id)?;
    let Json(request) = body.map_err(|e| error(StatusCode::BAD_REQUEST, e.body_text()))?;
    if !service.library.videos.contains_key(&request.video) {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("no video {}", request.video),
        ));
    }
    require_majority(&service)?;
    let watch = Watch {
        user,
        video: request.video,
        at_ms: clock_ms(),
    };
    let routed = service
        .route(user, ServiceBody::RecordWatch { id: 0, watch })
        .await;
    let Some((
        worker,
        ServiceBody::WatchRecorded {
            acknowledged_by,
            replicas,
            ..
        },
    )) = routed.answer
    else {
        return Err(unavailable(
            "the watch was not acknowledged by a majority",
            &routed.failures,
        ));
    };
    let mut response = (
        StatusCode::CREATED,
        Json(WatchResponse {
            user,
            video: request.video,
            served_by: worker.to_string(),
            acknowledged_by: acknowledged_by.iter().map(|a| a.to_string()).collect(),
            replicas,
        }),
    )
        .into_response();
    response.extensions_mut().insert(Attempts(routed.attempts));
    Ok(response)
}

/// `GET /api/recommendations/{user}` parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecommendQuery {
    n: Option<String>,
}

/// The `n` parameter: 10 when absent, else 1 to `MAX_RECOMMENDATIONS`.
fn how_many(text: Option<&str>) -> Result<u32, ApiError> {
    match text {
        None | Some("") => Ok(10),
        Some(text) => match text.parse::<u32>() {
            Ok(n) if (1..=MAX_RECOMMENDATIONS).contains(&n) => Ok(n),
            _ => Err(error(
                StatusCode::BAD_REQUEST,
                format!("n `{text}` must be 1 to {MAX_RECOMMENDATIONS}"),
            )),
        },
    }
}

/// The degraded answer: the most popular videos the user has not watched (in the
/// catalogue's own history; the replicated one may be out of reach).
fn popular_for(service: &Service, user: u32, n: u32) -> Vec<(u32, f32)> {
    let seen: BTreeSet<u32> = service
        .library
        .base_history
        .get(&user)
        .into_iter()
        .flatten()
        .copied()
        .collect();
    service
        .library
        .model
        .popular(n as usize, &seen)
        .into_iter()
        .map(|s| (s.item, s.score))
        .collect()
}

async fn recommendations(
    State(service): State<Arc<Service>>,
    Path(user): Path<String>,
    params: Result<Query<RecommendQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    require_api_role(&service)?;
    let user = known_user(&service, &user)?;
    let Query(params) = params.map_err(|e| error(StatusCode::BAD_REQUEST, e.body_text()))?;
    let n = how_many(params.n.as_deref())?;
    // Without a reachable majority no worker can answer: the degraded list at once.
    let routed = if reaches_majority(&service) {
        service
            .route(user, ServiceBody::Recommend { id: 0, user, n })
            .await
    } else {
        Routed {
            answer: None,
            attempts: 0,
            failures: vec!["no majority of replicas is reachable".into()],
        }
    };
    let me = service.identity.me.address.to_string();
    let (items, served_by, personal, degraded) = match routed.answer {
        Some((
            worker,
            ServiceBody::Recommended {
                items, personal, ..
            },
        )) => (items, worker.to_string(), personal, false),
        _ => {
            tracing::warn!(
                user,
                failures = ?routed.failures,
                "no worker answered; serving the popularity list"
            );
            (popular_for(&service, user, n), me.clone(), false, true)
        }
    };
    let items = items
        .into_iter()
        .filter_map(|(id, score)| {
            video_by_id(&service, id).map(|video| RecommendedJson { video, score })
        })
        .collect();
    let mut response = Json(RecommendationsResponse {
        user,
        items,
        served_by,
        answered_by: me,
        personal,
        degraded,
        attempts: routed.attempts,
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
    .into_response();
    response.extensions_mut().insert(Attempts(routed.attempts));
    if degraded {
        response.extensions_mut().insert(Degraded);
    }
    Ok(response)
}
