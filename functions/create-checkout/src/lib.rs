//! Top-ups: a workspace admin asks to pay for one of the partner's top-up options, or for a
//! number of points at the partner's credit rate, and is sent to Stripe Checkout on the
//! partner's connected account. The points arrive through the webhook once Stripe says paid.

use api::{ApiError, Caller, workspace_scope};
use billing::{Billing, CheckoutRequest, Mutation};
use domain::{Points, TopupOptionId};
use lambda_http::Request;
use serde::Deserialize;
use store::Table;

api::routes! {
    "POST /workspace/checkout" => checkout,
}

/// Exactly one of the two.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Checkout {
    topup_option_id: Option<String>,
    points: Option<Points>,
}

async fn checkout<T: Table>(billing: &Billing<T>, caller: &Caller, req: &Request) -> api::Answer {
    let (w, asker) = caller.workspace_payer()?;
    let idem = api::idempotency_key(req, &workspace_scope(w))?;
    let body: Checkout = api::json_body(req)?;
    let request = match (body.topup_option_id, body.points) {
        (Some(id), None) => CheckoutRequest::Option(
            TopupOptionId::parse(&id).map_err(|_| ApiError::invalid("topup_option_id", "no such top-up option"))?,
        ),
        (None, Some(points)) => CheckoutRequest::Points(points),
        (Some(_), Some(_)) => return Err(ApiError::invalid("points", "give topup_option_id or points, not both")),
        (None, None) => return Err(ApiError::invalid("topup_option_id", "give topup_option_id or points")),
    };
    let m = Mutation::new(&idem, &api::answers::checkout_created);
    api::replied(billing.create_checkout(w, asker, &request, m).await)
}
