//! A workspace's payments on its partner's connected account. Top-ups: who manages the
//! workspace's billing asks to pay for one of the partner's top-up options, or for a number of
//! points at the partner's credit rate, and is sent to Stripe Checkout; the points arrive
//! through the webhook once Stripe says paid. The card auto top-up charges: saved (or
//! replaced) on a Checkout page in setup mode without paying, and removed.
//!
//! And the receipts of top-ups, read from Stripe when asked: a workspace's (anyone of it) and a
//! partner wallet's (its partner admin). They are here because reading them needs the Stripe
//! key, which this function holds; the partner's is checked as every partner route checks it
//! (the role, then a suspended partner refused).

use api::{ApiError, Caller, answers, workspace_scope};
use billing::{Billing, CheckoutRequest, Mutation};
use domain::stripe_ids::ReceiptId;
use domain::{Points, TopupOptionId};
use lambda_http::Request;
use serde::Deserialize;
use store::Table;

api::routes! {
    "POST /workspace/checkout" => checkout,
    "POST /workspace/card" => save_card,
    "DELETE /workspace/card" => remove_card,
    "GET /workspace/receipts/{id}" => workspace_receipt,
    "GET /partner/wallet/receipts/{id}" => partner_receipt,
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

/// The receipt `{id}` names, if it can be one: an id that can't is one the caller has none of.
fn receipt_id(req: &Request) -> Result<Option<ReceiptId>, ApiError> {
    Ok(ReceiptId::parse(&api::path_param(req, "id")?).ok())
}

async fn workspace_receipt<T: Table>(billing: &Billing<T>, caller: &Caller, req: &Request) -> api::Answer {
    let w = caller.workspace_reader()?;
    let Some(id) = receipt_id(req)? else {
        // Whose workspace it is comes first, as with an id that could be a receipt.
        billing.caller_workspace(w, caller.partner.as_ref()).await?;
        return Err(ApiError::not_found("receipt"));
    };
    let receipt = billing.workspace_receipt(w, caller.partner.as_ref(), &id).await?;
    Ok(api::ok(answers::ReceiptBody::from(&receipt)))
}

async fn partner_receipt<T: Table>(billing: &Billing<T>, caller: &Caller, req: &Request) -> api::Answer {
    let p = caller.partner_admin()?;
    let Some(id) = receipt_id(req)? else {
        // A suspended partner is refused first, as with an id that could be a receipt.
        billing.partner_admin_gate(p).await?;
        return Err(ApiError::not_found("receipt"));
    };
    let receipt = billing.partner_receipt(p, &id).await?;
    Ok(api::ok(answers::ReceiptBody::from(&receipt)))
}
