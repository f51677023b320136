//! HTTP from the browser: every call has a timeout (a SIGSTOPped node accepts the
//! connection and never answers), sends the bearer token when asked, and turns error
//! answers into the `ErrorBody` text.

use crate::actions::{Body, Method};
use crate::protocol::error_text;
use gloo::net::http::{Method as HttpMethod, RequestBuilder};
use gloo::timers::callback::Timeout;
use serde::de::DeserializeOwned;

/// How long any call may take (ms).
pub const TIMEOUT_MS: u32 = 5_000;

/// A completed exchange.
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Body text.
    pub body: String,
}

impl Answer {
    /// 2xx.
    pub fn is_ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// Sends one request; `Err` for network errors and timeouts, `Ok` for any answer.
pub async fn send(
    method: Method,
    url: &str,
    body: &Body,
    token: Option<&str>,
    timeout_ms: u32,
) -> Result<Answer, String> {
    let controller = web_sys::AbortController::new().map_err(|_| "no AbortController")?;
    let signal = controller.signal();
    let method = match method {
        Method::Get => HttpMethod::GET,
        Method::Post => HttpMethod::POST,
        Method::Put => HttpMethod::PUT,
        Method::Delete => HttpMethod::DELETE,
    };
    let mut builder = RequestBuilder::new(url)
        .method(method)
        .abort_signal(Some(&signal));
    if let Some(token) = token.filter(|t| !t.is_empty()) {
        builder = builder.header("Authorization", &format!("Bearer {token}"));
    }
    let request = match body {
        Body::Empty => builder.build(),
        Body::Json(text) => builder
            .header("Content-Type", "application/json")
            .body(text.as_str()),
        Body::Form(text) => builder
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(text.as_str()),
    }
    .map_err(|e| e.to_string())?;
    // Aborts the fetch (headers or body) when it takes too long; dropped on completion.
    let _deadline = Timeout::new(timeout_ms, move || controller.abort());
    let timed_out = |e: gloo::net::Error| {
        if signal.aborted() {
            format!("no answer within {} s", timeout_ms / 1000)
        } else {
            // The browser says only "Failed to fetch": refused, reset or unreachable.
            format!("no connection (down or unreachable?): {e}")
        }
    };
    let response = request.send().await.map_err(timed_out)?;
    let status = response.status();
    let body = response.text().await.map_err(timed_out)?;
    Ok(Answer { status, body })
}

/// GETs and decodes JSON; error answers become their `ErrorBody` text.
pub async fn get_json<T: DeserializeOwned>(url: &str) -> Result<T, String> {
    let answer = send(Method::Get, url, &Body::Empty, None, TIMEOUT_MS).await?;
    decode(&answer)
}

/// Decodes a 2xx answer as JSON.
pub fn decode<T: DeserializeOwned>(answer: &Answer) -> Result<T, String> {
    if !answer.is_ok() {
        return Err(error_text(answer.status, &answer.body));
    }
    serde_json::from_str(&answer.body).map_err(|e| format!("unexpected answer: {e}"))
}

/// Percent-encodes a query parameter.
pub fn encode(text: &str) -> String {
    String::from(js_sys::encode_uri_component(text))
}
