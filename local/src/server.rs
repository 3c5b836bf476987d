//! The HTTP server: hyper (HTTP/1.1) on 127.0.0.1, every request through the [`Router`], but
//! the runner's own pages and controls: the screens of `web/` and the local sign-in ([`web`]),
//! and the clock control ([`clock`]), which are not
//! routes of template.yaml.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use billing::Billing;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lambda_http::Body;
use lambda_http::http::{HeaderValue, StatusCode};
use serde_json::json;
use store::Table;
use tokio::net::TcpListener;

use crate::clock;
use crate::jwt::Verifier;
use crate::router::Router;
use crate::web;

/// Largest request body read (API Gateway's own limit is 10 MB; the handlers accept 64 KiB).
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;

/// What every connection shares.
pub struct App<T> {
    pub router: Router<T>,
    pub billing: Billing<T>,
    pub verifier: Verifier,
    /// Where the screens' files are read from (`web/`).
    pub web_root: std::path::PathBuf,
}

pub fn now_epoch_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Serves `app` on `listener` until `shutdown` completes.
pub async fn serve<T: Table>(
    app: Arc<App<T>>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Too many open files and the like: log, and keep serving the others.
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(respond(&app, req, peer).await) }
            });
            if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
        });
    }
}

async fn respond<T: Table>(
    app: &App<T>,
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
) -> hyper::Response<Full<Bytes>> {
    let started = Instant::now();
    let (mut parts, body) = req.into_parts();
    let (method, path) = (parts.method.clone(), parts.uri.path().to_owned());
    let body = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let too_large = e.downcast_ref::<http_body_util::LengthLimitError>().is_some();
            let (status, kind) = if too_large {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
            } else {
                (StatusCode::BAD_REQUEST, "invalid_request")
            };
            let body = json!({ "error": { "type": kind, "message": "the request body could not be read" } });
            return plain(status, body.to_string());
        }
    };
    if method == hyper::Method::GET {
        if let Some(page) = web::local_page(&path) {
            return page;
        }
        if let Some(response) = web::serve_static(&app.billing, &app.web_root, &path, parts.uri.query()).await {
            return response;
        }
    }
    if method == hyper::Method::POST && path == web::TOKEN_PATH {
        let (status, body) = web::token(&app.verifier, now_epoch_s(), &body);
        return plain(status, body.to_string());
    }
    // API Gateway tells the function who called.
    if let Ok(ip) = HeaderValue::from_str(&peer.ip().to_string()) {
        parts.headers.insert("x-forwarded-for", ip);
    }
    let request = hyper::Request::from_parts(parts, body.to_vec());
    let response = if path == clock::CLOCK_PATH {
        clock::control(app, request).await
    } else {
        let response = app.router.handle(&app.billing, &app.verifier, request).await;
        // The stream's stand-in: the refills this change asked for are charged before the next
        // request, so what follows sees them (deployed, seconds later).
        if method != hyper::Method::GET
            && response.status().is_success()
            && let Err(e) = clock::charge(app).await
        {
            tracing::warn!(error = %e, "charging pass failed; the next change or tick takes what it left");
        }
        response
    };
    let (parts, body) = response.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(t) => Bytes::from(t),
        Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    tracing::info!(
        %method,
        %path,
        status = parts.status.as_u16(),
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "request"
    );
    hyper::Response::from_parts(parts, Full::new(bytes))
}

fn plain(status: StatusCode, body: String) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(hyper::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
