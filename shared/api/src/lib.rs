//! The HTTP edge every function shares: who is calling (the JWT authorizer's claims), request
//! parsing, the `Idempotency-Key`, and the one mapping from errors to status codes.

// Numbers from outside (amounts, quantities, timestamps) are combined only with checked
// arithmetic; test code, exercising generated values, is exempt.
#![cfg_attr(not(test), warn(clippy::arithmetic_side_effects))]

pub mod answers;
mod auth;
mod error;
mod routes;

use domain::stripe_ids;
use lambda_http::http::{Method, StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::de::DeserializeOwned;

use billing::Reply;
use store::{IdempotencyKey, InvalidCursor, PageRequest};

pub use auth::{Caller, PLATFORM_SCOPE, Role, parse_roles, partner_scope, workspace_scope};
pub use error::ApiError;

/// What a handler gives: the response, or the error that becomes one.
pub type Answer = Result<Response<Body>, ApiError>;

/// What [`routes!`] expands to names these, so a function's crate need not.
#[doc(hidden)]
pub mod __private {
    pub use billing::Billing;
    pub use lambda_http::{Body, Request, Response};
    pub use store::Table;
}

/// Header carrying the client's idempotency key (Stripe's convention).
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Page sizes a client may ask for.
pub const DEFAULT_PAGE_SIZE: usize = 25;
pub const MAX_PAGE_SIZE: usize = 100;

/// The route this request matched, as API Gateway names it: `"POST /workspace/addons"`.
/// Handlers dispatch on it, so a function serves exactly the routes template.yaml gives it.
pub fn route_key(req: &Request) -> Option<String> {
    match req.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(ctx)) => ctx.route_key.clone(),
        _ => None,
    }
}

/// The route of `req` if it is one of `routes`, else 404.
pub fn known_route(req: &Request, routes: &[&'static str]) -> Result<&'static str, ApiError> {
    let key = route_key(req);
    routes.iter().copied().find(|r| key.as_deref() == Some(*r)).ok_or_else(ApiError::route_not_found)
}

pub fn path_param(req: &Request, name: &str) -> Result<String, ApiError> {
    req.path_parameters_ref()
        .and_then(|p| p.first(name))
        .map(str::to_owned)
        .ok_or_else(|| ApiError::invalid(name, "missing path parameter"))
}

/// `?limit=` (1 to 100, default 20) and `?cursor=` (the last invoice's id of the page before) of
/// a page of invoices, read from Stripe as it pages.
pub fn invoice_page(req: &Request) -> Result<(u8, Option<stripe_ids::InvoiceId>), ApiError> {
    let limit = match query_param(req, "limit") {
        None => 20,
        Some(l) => l
            .parse::<u8>()
            .ok()
            .filter(|l| (1..=100).contains(l))
            .ok_or_else(|| ApiError::invalid("limit", "must be a whole number from 1 to 100"))?,
    };
    let after = query_param(req, "cursor")
        .map(|c| {
            stripe_ids::InvoiceId::parse(&c).map_err(|_| ApiError::invalid("cursor", "not a cursor of this listing"))
        })
        .transpose()?;
    Ok((limit, after))
}

pub fn query_param(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters_ref().and_then(|q| q.first(name)).map(str::to_owned)
}

/// `?limit=` and `?cursor=`: the page a client asks for, its cursor decoded by `decode` (for
/// example `|c| LedgerCursor::decode(c, &wallet)`) into a position of the caller's listing, as a
/// previous page of the same listing returned it.
pub fn page_request<C>(
    req: &Request,
    decode: impl FnOnce(&str) -> Result<C, InvalidCursor>,
) -> Result<PageRequest<C>, ApiError> {
    Ok(PageRequest { limit: page_size(req, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?, after: cursor(req, decode)? })
}

/// [`page_request`] for a statement's entries, whose pages are larger: a month is read whole.
pub fn statement_page_request<C>(
    req: &Request,
    decode: impl FnOnce(&str) -> Result<C, InvalidCursor>,
) -> Result<PageRequest<C>, ApiError> {
    Ok(PageRequest { limit: page_size(req, MAX_STATEMENT_PAGE, MAX_STATEMENT_PAGE)?, after: cursor(req, decode)? })
}

/// What a statement route asks: the month of its path (`/statements/{month}`, `YYYY-MM`) and
/// `?format=` (`json`, the default, or `csv`).
pub fn statement_query(req: &Request) -> Result<(domain::Month, answers::StatementFormat), ApiError> {
    let month = path_param(req, "month")?.parse().map_err(|e| ApiError::invalid("month", e))?;
    let format = answers::StatementFormat::parse(query_param(req, "format").as_deref())
        .ok_or_else(|| ApiError::invalid("format", "must be json or csv"))?;
    Ok((month, format))
}

/// Most entries on one page of a statement, and its default.
pub const MAX_STATEMENT_PAGE: usize = 500;

/// `?limit=` (1..=`max`, default `default`).
fn page_size(req: &Request, default: usize, max: usize) -> Result<usize, ApiError> {
    match query_param(req, "limit") {
        None => Ok(default),
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| ApiError::invalid("limit", format!("must be an integer from 1 to {max}"))),
    }
}

fn cursor<C>(req: &Request, decode: impl FnOnce(&str) -> Result<C, InvalidCursor>) -> Result<Option<C>, ApiError> {
    query_param(req, "cursor").map(|c| decode(&c).map_err(|e| ApiError::invalid("cursor", e))).transpose()
}

fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    }
}

/// Parses the JSON body into `T`: unknown fields, wrong types and bad values are a 400 naming
/// the field.
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let bytes = body_bytes(req);
    if bytes.is_empty() {
        return Err(ApiError::invalid("body", "a JSON body is required"));
    }
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::invalid("body", format!("the body may be at most {MAX_BODY_BYTES} bytes")));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let message = e.inner().to_string();
        // Only a data error sits at a field; broken or truncated JSON is the body's fault.
        if e.inner().classify() != serde_json::error::Category::Data {
            return ApiError::invalid("body", strip_position(&message));
        }
        // The path names the field, unknown ones included ("limits.seats"); a missing field
        // is reported at its parent, so at the top it is the body's.
        let path = e.path().to_string();
        let param = if path == "." { "body".to_owned() } else { path };
        ApiError::invalid(&param, strip_position(&message))
    })?;
    de.end().map_err(|_| ApiError::invalid("body", "trailing characters after the JSON value"))?;
    Ok(value)
}

/// "... at line 1 column 17" helps nobody reading an API error.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// The request's idempotency key, bound to `scope` (the caller's tenant) and to the request
/// (method, path, body): the same key with another request is refused with a 422.
pub fn idempotency_key(req: &Request, scope: &str) -> Result<IdempotencyKey, ApiError> {
    let key = req
        .headers()
        .get(IDEMPOTENCY_HEADER)
        .ok_or_else(|| ApiError::invalid("Idempotency-Key", "this request needs an Idempotency-Key header"))?
        .to_str()
        .map_err(|_| ApiError::invalid("Idempotency-Key", "must be printable ASCII"))?;
    let mut request = Vec::with_capacity(body_bytes(req).len().saturating_add(64));
    request.extend_from_slice(req.method().as_str().as_bytes());
    request.push(b' ');
    request.extend_from_slice(req.uri().path().as_bytes());
    request.push(b'\n');
    request.extend_from_slice(body_bytes(req));
    IdempotencyKey::new(scope, key, &request).map_err(|e| ApiError::invalid("Idempotency-Key", e))
}

pub fn is_mutation(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

pub fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response<Body> {
    let text = serde_json::to_string(body).expect("answers serialize to JSON");
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::Text(text))
        .expect("a status and a content type make a valid response")
}

/// A read's answer: `body` with 200.
pub fn ok(body: impl serde::Serialize) -> Response<Body> {
    json_response(StatusCode::OK, &body)
}

/// What a handler answers for a mutation's outcome: its reply (first time or replayed), or the
/// error that becomes one.
pub fn replied(r: billing::Replied) -> Answer {
    Ok(reply(r?))
}

/// Sends a mutation's reply (first time or replayed).
pub fn reply(r: Reply) -> Response<Body> {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
    json_response(status, &r.body)
}

/// Turns a handler's result into the response, logging what the body must not say.
pub fn finish(result: Result<Response<Body>, ApiError>) -> Response<Body> {
    match result {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// Runs a function's handling of `req` inside its request span, and logs one line when it is
/// answered. Every log line of the request then carries the request id, the operation (the route
/// key), and the partner and workspace it concerns, as far as the request names them: from the
/// token's claims, else from the path (`/partner/workspaces/{id}`); the webhook records its own
/// once it has read the event (`tracing::Span::current().record(..)`).
pub async fn handled(
    req: &Request,
    handling: impl std::future::Future<Output = Result<Response<Body>, ApiError>>,
) -> Response<Body> {
    use tracing::Instrument;
    let span = request_span(req);
    let started = std::time::Instant::now();
    // On the heap: a handler's future is large, and a debug build's stack is not.
    let response = finish(Box::pin(handling).instrument(span.clone()).await);
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    span.in_scope(|| tracing::info!(status = response.status().as_u16(), elapsed_ms, "answered"));
    response
}

/// The span of one request (see [`handled`]). Never fails: what the request doesn't say is empty.
pub fn request_span(req: &Request) -> tracing::Span {
    let (request_id, claims) = match req.request_context_ref() {
        Some(ctx @ lambda_http::request::RequestContext::ApiGatewayV2(v2)) => {
            (v2.request_id.clone(), ctx.authorizer().and_then(|a| a.jwt.as_ref()).map(|j| j.claims.clone()))
        }
        _ => (None, None),
    };
    let claim = |name: &str| claims.as_ref().and_then(|c| c.get(name)).cloned();
    let partner = claim("partner_id");
    let workspace = claim("workspace_id")
        .or_else(|| route_key(req).filter(|r| r.contains("/workspace")).and_then(|_| path_param(req, "id").ok()));
    tracing::info_span!(
        "request",
        request_id = request_id.as_deref().unwrap_or(""),
        operation = route_key(req).as_deref().unwrap_or(""),
        partner = partner.as_deref().unwrap_or(""),
        workspace = workspace.as_deref().unwrap_or(""),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Buy {
        addon: String,
        quantity: u32,
    }

    fn req(body: &str) -> Request {
        let mut r = Request::new(Body::Text(body.to_owned()));
        *r.method_mut() = Method::POST;
        r
    }

    #[test]
    fn bad_bodies_name_the_field() {
        let param = |b: &str| json_body::<Buy>(&req(b)).unwrap_err().param().map(str::to_owned);
        assert_eq!(param(r#"{"addon":"extra_bot","quantity":1.5}"#).as_deref(), Some("quantity"));
        assert_eq!(param(r#"{"addon":"extra_bot","quantity":-1}"#).as_deref(), Some("quantity"));
        assert_eq!(param(r#"{"addon":"extra_bot","quantity":1,"x":2}"#).as_deref(), Some("x"));
        assert_eq!(param(r#"{"addon":"extra_bot"}"#).as_deref(), Some("body"));
        assert_eq!(param("not json").as_deref(), Some("body"));
        assert_eq!(param(r#"{"addon":"extra_bot","#).as_deref(), Some("body"), "truncated");
        assert_eq!(param(r#"{"addon":"#).as_deref(), Some("body"), "truncated in a value");
        assert_eq!(param("").as_deref(), Some("body"));
        assert!(json_body::<Buy>(&req(r#"{"addon":"extra_bot","quantity":2}"#)).is_ok());
    }

    #[test]
    fn idempotency_keys_bind_the_request() {
        let mut a = req(r#"{"a":1}"#);
        a.headers_mut().insert(IDEMPOTENCY_HEADER, "k1".parse().unwrap());
        let mut b = req(r#"{"a":2}"#);
        b.headers_mut().insert(IDEMPOTENCY_HEADER, "k1".parse().unwrap());
        let (ka, kb) = (idempotency_key(&a, "ws:x").unwrap(), idempotency_key(&b, "ws:x").unwrap());
        assert_eq!(ka.key(), kb.key());
        assert_ne!(ka, kb, "same key, different body: a different request");
        assert!(idempotency_key(&req("{}"), "ws:x").is_err(), "the header is required");
    }
}
