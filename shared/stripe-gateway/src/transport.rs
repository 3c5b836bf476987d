//! The HTTP under async-stripe's typed requests: [`StripeHttp`] is async-stripe's
//! `StripeClient` (the trait its request types are sent through) over one pooled hyper-util client
//! on rustls, the client the OAuth exchange uses too.
//!
//! Why not async-stripe's own client: it parses every error answer into `ApiErrors`, whose
//! embedded PaymentIntent, PaymentMethod, SetupIntent and Source reach the parser of nearly every
//! Stripe object; that parser was about half of each Stripe-calling bootstrap. Here an error is
//! read into [`ApiError`], the fields [`super::client`] maps. async-stripe's client also opens a
//! connection per call; this one keeps idle connections for reuse.
//!
//! One call is one attempt: the retries, with the same idempotency key, are the gateway's.

use std::fmt::{Display, Write as _};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, USER_AGENT};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use stripe_client_core::{CustomizedStripeRequest, StripeClient, StripeClientErr, StripeMethod};
use tracing::Instrument;

/// Largest answer read. Stripe's objects, expanded, are tens of KiB.
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
/// How long a connection may wait in the pool for the next call.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
const USER_AGENT_VALUE: &str = concat!("billing-backend/", env!("CARGO_PKG_VERSION"));

pub(crate) type HttpsClient = HyperClient<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Builds the HTTPS client. Fails when the system has no root certificates.
pub(crate) fn https_client() -> Result<HttpsClient, String> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| format!("no root certificates: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(HyperClient::builder(TokioExecutor::new()).pool_idle_timeout(POOL_IDLE_TIMEOUT).build(connector))
}

/// Reads an answer's status and body, at most [`MAX_RESPONSE_BYTES`], within `timeout`. The call
/// is one span that `runtime`'s X-Ray layer sends as a subsegment when the function's tracing is
/// on (the span contract is in `runtime::xray`): the method, the scheme and host, the path with
/// its ids as `{id}`, and the status. Never the query, the headers (the secret key, the
/// connected account) or the body.
pub(crate) async fn exchange(
    http: &HttpsClient,
    request: hyper::Request<Full<Bytes>>,
    timeout: Duration,
) -> Result<(u16, Bytes), CallError> {
    use tracing::field::Empty;
    let uri = request.uri();
    let span = tracing::info_span!(target: "xray", "Stripe", http.method = request.method().as_str(),
        http.url = origin(uri), http.path = path_template(uri.path()),
        http.status = Empty, error = Empty, throttle = Empty, fault = Empty);
    let attempt = async {
        let response = http.request(request).await.map_err(|e| CallError::Transport(e.to_string()))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| CallError::Transport(format!("answer cut off: {e}")))?
            .to_bytes();
        Ok((status, body))
    };
    let answer = tokio::time::timeout(timeout, attempt).instrument(span.clone()).await;
    let answer = answer.map_err(|_| CallError::Timeout).and_then(|answer| answer);
    match &answer {
        Ok((status, _)) => {
            span.record("http.status", u64::from(*status));
            match status {
                429 => span.record("error", true).record("throttle", true),
                400..=499 => span.record("error", true),
                500.. => span.record("fault", true),
                _ => &span,
            };
        }
        // No answer: refused, reset, cut off, or too late.
        Err(_) => {
            span.record("fault", true);
        }
    }
    answer
}

/// The scheme, host and port a request goes to: `https://api.stripe.com`.
fn origin(uri: &hyper::Uri) -> String {
    let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
    format!("{}://{}{port}", uri.scheme_str().unwrap_or("https"), uri.host().unwrap_or_default())
}

/// A request's path with its ids as `{id}`: `/v1/payment_methods/{id}/detach`. Stripe's resource
/// names are lowercase letters and underscores and its version is `v1`; an id has digits or
/// capitals (`pm_1NqX...`), so any other segment is taken for one.
fn path_template(path: &str) -> String {
    let resource = |segment: &str| segment.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    path.split('/')
        .map(|segment| if segment == "v1" || resource(segment) { segment } else { "{id}" })
        .collect::<Vec<_>>()
        .join("/")
}

/// Why one call to Stripe's API gave no object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallError {
    /// Stripe answered an error status with its error JSON.
    Api { status: u16, error: Box<ApiError> },
    /// An error status whose body is not Stripe's error JSON: a proxy or load balancer in front
    /// of Stripe failing (an HTML 502).
    UnreadableError { status: u16 },
    /// No answer: refused, reset, TLS, the body cut off.
    Transport(String),
    /// No answer in time.
    Timeout,
    /// A success whose body is not the object asked for.
    Unreadable(String),
    /// A request that can't be sent (a header value that isn't one).
    Request(String),
}

impl StripeClientErr for CallError {
    fn deserialize_err(message: impl Display) -> Self {
        CallError::Unreadable(message.to_string())
    }
}

/// Stripe's error JSON: `{"error": {...}}`.
#[derive(serde::Deserialize)]
struct ErrorBody {
    error: ApiError,
}

/// The fields of Stripe's error object the gateway maps.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub(crate) struct ApiError {
    /// `card_error`, `invalid_request_error`, `idempotency_error`, `api_error`.
    #[serde(rename = "type", default)]
    pub type_: String,
    pub code: Option<String>,
    pub decline_code: Option<String>,
    pub message: Option<String>,
    pub param: Option<String>,
    /// The PaymentIntent a declined confirm created.
    pub payment_intent: Option<ObjectId>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub(crate) struct ObjectId {
    pub id: String,
}

/// Reads an error answer.
fn api_error(status: u16, body: &[u8]) -> CallError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(body) => CallError::Api { status, error: Box::new(body.error) },
        Err(_) => CallError::UnreadableError { status },
    }
}

/// async-stripe's `StripeClient` over [`HttpsClient`]: `{base}v1{path}`, the secret key, the API
/// version async-stripe's types are generated for, `Stripe-Account` and `Idempotency-Key` from
/// the request's customization.
#[derive(Clone)]
pub(crate) struct StripeHttp {
    http: HttpsClient,
    /// Ends with a slash.
    api_base: String,
    authorization: HeaderValue,
    timeout: Duration,
}

impl StripeHttp {
    pub(crate) fn new(
        http: HttpsClient,
        api_base: String,
        secret_key: &str,
        timeout: Duration,
    ) -> Result<Self, String> {
        let mut authorization = HeaderValue::try_from(format!("Bearer {secret_key}"))
            .map_err(|_| "the secret key is not a header value".to_owned())?;
        authorization.set_sensitive(true);
        Ok(Self { http, api_base, authorization, timeout })
    }

    fn request(&self, call: CustomizedStripeRequest) -> Result<(hyper::Request<Full<Bytes>>, Duration), CallError> {
        let (request, config) = call.into_pieces();
        let mut uri = format!("{}v1{}", self.api_base, request.path);
        if let Some(query) = &request.query {
            let _ = write!(uri, "?{query}");
        }
        let method = match request.method {
            StripeMethod::Get => hyper::Method::GET,
            StripeMethod::Post => hyper::Method::POST,
            StripeMethod::Delete => hyper::Method::DELETE,
        };
        let mut builder = hyper::Request::builder()
            .method(method)
            .uri(uri)
            .header(AUTHORIZATION, self.authorization.clone())
            .header(USER_AGENT, USER_AGENT_VALUE)
            .header("stripe-version", stripe_client_core::VERSION.as_str());
        if let Some(account) = &config.account_id {
            builder = builder.header("stripe-account", account.as_str());
        }
        if let Some(key) = config.request_strategy.as_ref().and_then(|s| s.get_key()) {
            builder = builder.header("idempotency-key", key.as_str());
        }
        if request.body.is_some() {
            builder = builder.header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let body = Full::new(request.body.map(Bytes::from).unwrap_or_default());
        let request = builder.body(body).map_err(|e| CallError::Request(e.to_string()))?;
        Ok((request, config.timeout.unwrap_or(self.timeout)))
    }
}

impl StripeClient for StripeHttp {
    type Err = CallError;

    async fn execute(&self, call: CustomizedStripeRequest) -> Result<Bytes, CallError> {
        let (request, timeout) = self.request(call)?;
        let (status, body) = exchange(&self.http, request, timeout).await?;
        match status {
            200..=299 => Ok(body),
            _ => Err(api_error(status, &body)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_answers_are_read_for_the_fields_mapped() {
        let body = br#"{"error": {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.", "payment_intent": {"id": "pi_1", "object": "payment_intent"},
            "payment_method": {"id": "pm_1"}, "doc_url": "https://stripe.com/docs"}}"#;
        let CallError::Api { status: 402, error } = api_error(402, body) else { panic!("not read") };
        assert_eq!(error.type_, "card_error");
        assert_eq!(error.decline_code.as_deref(), Some("insufficient_funds"));
        assert_eq!(error.payment_intent, Some(ObjectId { id: "pi_1".into() }));
        assert_eq!(api_error(502, b"<html>Bad gateway</html>"), CallError::UnreadableError { status: 502 });
    }

    #[test]
    fn a_traced_call_names_its_host_and_path_without_ids() {
        let cases = [
            ("/v1/payment_intents", "/v1/payment_intents"),
            ("/v1/payment_methods/pm_1NqXkL2eZvKYlo2C/detach", "/v1/payment_methods/{id}/detach"),
            ("/v1/checkout/sessions/cs_test_a1B2c3", "/v1/checkout/sessions/{id}"),
            ("/oauth/token", "/oauth/token"),
        ];
        for (path, template) in cases {
            assert_eq!(path_template(path), template);
        }
        let uri: hyper::Uri = "https://api.stripe.com/v1/events?created%5Bgte%5D=1".parse().unwrap();
        assert_eq!(origin(&uri), "https://api.stripe.com");
        assert_eq!(origin(&"http://127.0.0.1:12111/v1/customers".parse().unwrap()), "http://127.0.0.1:12111");
    }
}
