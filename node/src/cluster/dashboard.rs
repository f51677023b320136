//! Serves the built dashboard (`dist/`, from `scripts/build-web.sh`) for every path no
//! route took: a file if it exists, otherwise `index.html`, so the app's own routes
//! work. Paths under the API prefixes get a JSON 404 instead, never the page.

use crate::cluster::http_common::ApiError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Serves the built dashboard from `web_root` for every path no route took.
pub fn dashboard_fallback(
    web_root: &std::path::Path,
) -> impl Fn(
    axum::extract::Request,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>
       + Clone
       + Send
       + Sync
       + 'static {
    let web_root = web_root.to_path_buf();
    move |request: axum::extract::Request| {
        let web_root = web_root.clone();
        Box::pin(async move { serve_dashboard(&web_root, request).await })
    }
}

async fn serve_dashboard(web_root: &std::path::Path, request: axum::extract::Request) -> Response {
    let path = request.uri().path();
    let api = [
        "/api",
        "/cluster",
        "/faults",
        "/metrics",
        "/ws",
        "/alive",
        "/ready",
        "/nodes",
        "/launcher",
    ];
    if api
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")))
    {
        return ApiError(StatusCode::NOT_FOUND, "no such endpoint".into()).into_response();
    }
    let index = web_root.join("index.html");
    if !index.exists() {
        return (
            StatusCode::NOT_FOUND,
            "The dashboard is not built: run scripts/build-web.sh (scripts/demo.sh does it).",
        )
            .into_response();
    }
    let mut files = tower_http::services::ServeDir::new(web_root)
        .fallback(tower_http::services::ServeFile::new(index));
    match files.try_call(request).await {
        Ok(response) => response.into_response(),
        Err(e) => ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
