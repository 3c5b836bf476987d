//! A workspace's payments on its partner's connected account. Top-ups: who manages the
//! workspace's billing asks to pay for one of the partner's top-up options, or for a number of
//! points at the partner's credit rate, and is sent to Stripe Checkout; the points arrive
//! through the webhook once Stripe says paid. The card auto top-up charges: saved (or
//! replaced) on a Checkout page in setup mode without paying, and removed.

use api::{ApiError, Caller, workspace_scope};
use billing::{Billing, CheckoutRequest, Mutation};
use domain::{Points, TopupOptionId};
use lambda_http::Request;
use serde::Deserialize;
use store::Table;

api::routes! {
    "POST /workspace/checkout" => checkout,
    "POST /workspace/card" => save_card,
    "DELETE /workspace/card" => remove_card,
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

/// No body: the page sends the customer back to the partner's checkout URLs.
async fn save_card<T: Table>(billing: &Billing<T>, caller: &Caller, req: &Request) -> api::Answer {
    let (w, asker) = caller.workspace_payer()?;
    let idem = api::idempotency_key(req, &workspace_scope(w))?;
    let m = Mutation::new(&idem, &api::answers::card_session_created);
    api::replied(billing.create_card_session(w, asker, m).await)
}

async fn remove_card<T: Table>(billing: &Billing<T>, caller: &Caller, req: &Request) -> api::Answer {
    let (w, asker) = caller.workspace_payer()?;
    let idem = api::idempotency_key(req, &workspace_scope(w))?;
    let m = Mutation::new(&idem, &api::answers::card_removed);
    api::replied(billing.remove_workspace_card(w, asker, m).await)
}
