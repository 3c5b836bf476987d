//! Stripe's webhooks (no JWT: the signature is the authentication): `POST /stripe/webhook`, the
//! Connect endpoint (the partners' connected accounts), and `POST /stripe/platform-webhook`, the
//! platform's own account (partner wallet payments), each with its own signing secret.
//! The raw body is verified and applied by [`Billing::stripe_webhook`]; the answer's status
//! tells Stripe whether to deliver again (any non-2xx is retried for up to 3 days).

use api::ApiError;
use billing::{Billing, WebhookEndpoint};
use lambda_http::{Body, Request, Response};
use store::Table;

pub const ROUTES: &[&str] = &["POST /stripe/webhook", "POST /stripe/platform-webhook"];

/// Stripe's signature header.
pub const SIGNATURE_HEADER: &str = "stripe-signature";

pub async fn handle<T: Table>(billing: &Billing<T>, req: Request) -> Response<Body> {
    api::handled(&req, route(billing, &req)).await
}

async fn route<T: Table>(billing: &Billing<T>, req: &Request) -> api::Answer {
    let endpoint = match api::route_key(req).as_deref() {
        Some("POST /stripe/webhook") => WebhookEndpoint::Connect,
        Some("POST /stripe/platform-webhook") => WebhookEndpoint::Platform,
        _ => return Err(ApiError::route_not_found()),
    };
    // The bytes exactly as Stripe signed them: never re-serialized JSON.
    let payload: &[u8] = match req.body() {
        Body::Empty => b"",
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => return Err(ApiError::invalid("body", "unreadable body")),
    };
    let signature = req.headers().get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let outcome = billing.stripe_webhook(endpoint, payload, signature).await.inspect_err(|e| {
        // Stripe retries what we refuse: say why in the log (the body itself is never logged).
        tracing::warn!(error = %e, "Stripe event refused");
    })?;
    Ok(api::ok(api::answers::WebhookReceived::new(outcome)))
}
