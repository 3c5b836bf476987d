//! Stripe's webhooks (no JWT: the signature is the authentication): `POST /stripe/webhook`, the
//! Connect endpoint (the partners' connected accounts), and `POST /stripe/platform-webhook`, the
//! platform's own account (partner wallet payments), each with its own signing secret.
//! The raw body is verified and applied by [`Billing::stripe_webhook`]; the answer's status
//! tells Stripe whether to deliver again (any non-2xx is retried for up to 3 days).
//!
//! Each top-up credited and each delivery refused prints one metric line (Embedded Metric
//! Format, see `runtime::metrics`): `TopupsCredited` and `TopupAmount` per currency,
//! `WebhookRefused` per reason.

use api::ApiError;
use billing::{Billing, OpError, WebhookEndpoint, WebhookOutcome};
use lambda_http::{Body, Request, Response};
use runtime::metrics::{FUNCTION as BY_FUNCTION, MetricLine, Number, Unit};
use store::Table;

pub const ROUTES: &[&str] = &["POST /stripe/webhook", "POST /stripe/platform-webhook"];

/// Stripe's signature header.
pub const SIGNATURE_HEADER: &str = "stripe-signature";

/// The value of the metrics' `Function` dimension (template.yaml's alarm names it).
pub const FUNCTION: &str = "stripe-webhook";

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
        _ => {
            refused(MALFORMED).emit();
            return Err(ApiError::invalid("body", "unreadable body"));
        }
    };
    let signature = req.headers().get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let outcome = billing.stripe_webhook(endpoint, payload, signature).await.inspect_err(|e| {
        // Stripe retries what we refuse: say why in the log (the body itself is never logged).
        tracing::warn!(error = %e, "Stripe event refused");
        refused(refusal_reason(e)).emit();
    })?;
    if let Some(line) = credited(outcome) {
        line.emit();
    }
    Ok(api::ok(api::answers::WebhookReceived::new(outcome)))
}

/// The `Reason` of a delivery refused with a body that is not an event.
const MALFORMED: &str = "malformed";

/// Why a delivery was refused, as the `Reason` dimension: what to look at.
///
/// - `signature`: no signature matched the endpoint's secrets (a secret rotated badly, or not
///   Stripe);
/// - `malformed`: the body is not an event;
/// - `livemode`: an event of the other mode (a test endpoint pointed at a live stack, or back);
/// - `account`: an event on the wrong endpoint, or not from the account its payment was made on;
/// - `event`: an event that contradicts what is stored (another currency, a session not paid);
/// - `retry_later`: a refund or dispute before its payment's credit (Stripe keeps no order);
/// - `unavailable`: the table busy or unreachable (a 5xx or 409: Stripe delivers again);
/// - `internal`: anything else (a 5xx whose log line names it).
pub fn refusal_reason(e: &OpError) -> &'static str {
    match e {
        OpError::Invalid { param, .. } => match param.as_str() {
            "Stripe-Signature" => "signature",
            "body" => MALFORMED,
            "livemode" => "livemode",
            "account" => "account",
            _ => "event",
        },
        OpError::RetryLater(_) => "retry_later",
        OpError::Conflict | OpError::Unavailable(_) | OpError::StripeUnavailable(_) => "unavailable",
        _ => "internal",
    }
}

/// One refused delivery: counted per function (the alarm's) and per reason.
pub fn refused(reason: &'static str) -> MetricLine {
    MetricLine::new(FUNCTION).dimension("Reason", reason).metric(
        "WebhookRefused",
        1_u64.into(),
        Unit::Count,
        &[&[BY_FUNCTION], &[BY_FUNCTION, "Reason"]],
    )
}

/// A top-up credited: counted per function and per currency, and its amount (in the currency's
/// major unit) per currency only, since amounts in different currencies don't add up.
pub fn credited(outcome: WebhookOutcome) -> Option<MetricLine> {
    let WebhookOutcome::Credited(amount) = outcome else { return None };
    let line = MetricLine::new(FUNCTION)
        .dimension("Currency", amount.currency().code())
        .metric("TopupsCredited", 1_u64.into(), Unit::Count, &[&[BY_FUNCTION], &[BY_FUNCTION, "Currency"]])
        .metric("TopupAmount", Number::major(amount), Unit::None, &[&[BY_FUNCTION, "Currency"]]);
    Some(line)
}

#[cfg(test)]
mod tests {
    use domain::{CheckoutStatus, Currency, Money};
    use serde_json::{Value, json};

    use super::*;

    fn parsed(line: &MetricLine) -> Value {
        serde_json::from_str(&line.to_json(0)).unwrap()
    }

    #[test]
    fn a_credit_is_counted_and_summed_per_currency() {
        let paid = Money::from_minor(2500, Currency::parse("eur").unwrap()).unwrap();
        let line = credited(WebhookOutcome::Credited(paid)).expect("a credit has metrics");
        assert!(line.to_json(0).contains("\"TopupAmount\":25.00"), "exact, in major units");
        let line = parsed(&line);
        assert_eq!(
            (&line["Function"], &line["Currency"], &line["TopupsCredited"]),
            (&json!(FUNCTION), &json!("eur"), &json!(1))
        );
        let directives = &line["_aws"]["CloudWatchMetrics"];
        assert_eq!(directives[0]["Dimensions"], json!([["Function"], ["Function", "Currency"]]));
        assert_eq!(directives[1]["Dimensions"], json!([["Function", "Currency"]]), "no sum across currencies");
        assert_eq!(directives[1]["Metrics"], json!([{ "Name": "TopupAmount", "Unit": "None" }]));
        for other in
            [WebhookOutcome::AlreadyCredited, WebhookOutcome::Moved(CheckoutStatus::Expired), WebhookOutcome::Ignored]
        {
            assert!(credited(other).is_none(), "{other:?}");
        }
    }

    #[test]
    fn a_refusal_is_counted_per_reason_and_in_total() {
        let cases = [
            (OpError::invalid("Stripe-Signature", "no match"), "signature"),
            (OpError::invalid("body", "not JSON"), "malformed"),
            (OpError::invalid("livemode", "other mode"), "livemode"),
            (OpError::invalid("account", "wrong endpoint"), "account"),
            (OpError::invalid("data.object.currency", "not the payment's"), "event"),
            (OpError::RetryLater("not credited yet"), "retry_later"),
            (OpError::Conflict, "unavailable"),
            (OpError::Internal("broken".into()), "internal"),
        ];
        for (error, reason) in cases {
            assert_eq!(refusal_reason(&error), reason, "{error}");
        }
        let line = parsed(&refused("signature"));
        assert_eq!((&line["Reason"], &line["WebhookRefused"]), (&json!("signature"), &json!(1)));
        assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Function"], ["Function", "Reason"]]));
    }
}
