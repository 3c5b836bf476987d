//! A workspace's payments on its partner's connected account. Top-ups: who manages the
//! workspace's billing asks to pay for one of the partner's top-up options, or for a number of
//! points at the partner's credit rate, and is sent to Stripe Checkout; the points arrive
//! through the webhook once Stripe says paid. The card auto top-up charges: saved (or
//! replaced) on a Checkout page in setup mode without paying, and removed.
//!
//! Plans billed in money: a workspace subscribes to one of its partner's plans on a Checkout
//! page in subscription mode, changes its plan (an upgrade is charged for the rest of the cycle
//! now), puts add-ons on the plan's bill or takes them off, cancels at the cycle's end, and lists
//! its invoices.
//!
//! And the receipts of top-ups, read from Stripe when asked: a workspace's (anyone of it) and a
//! partner wallet's (its partner admin). They are here because reading them needs the Stripe
//! key, which this function holds; the partner's is checked as every partner route checks it
//! (the role, then a suspended partner refused).

use api::{ApiError, Caller, answers, workspace_scope};
use billing::{Billing, CheckoutRequest, Mutation};
use domain::stripe_ids::ReceiptId;
use domain::{AddonCode, AddonId, PlanId, Points, TopupOptionId, check_quantity};
use lambda_http::Request;
use serde::Deserialize;
use store::Table;

api::routes! {
    "POST /workspace/checkout" => checkout,
    "POST /workspace/card" => save_card,
    "DELETE /workspace/card" => remove_card,
    "GET /workspace/receipts/{id}" => workspace_receipt,
    "GET /partner/wallet/receipts/{id}" => partner_receipt,
    "POST /workspace/subscription" => subscribe,
    "DELETE /workspace/subscription" => cancel_subscription,
    "POST /workspace/plan" => change_plan,
    "POST /workspace/subscription/addons" => add_billed_addon,
    "DELETE /workspace/subscription/addons/{addon_id}" => end_billed_addon,
    "GET /workspace/invoices" => invoices,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChoosePlan {
    plan: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BilledAddon {
    addon: String,
    quantity: u32,
}

fn chosen_plan(req: &Request) -> Result<PlanId, ApiError> {
    let body: ChoosePlan = api::json_body(req)?;
    PlanId::parse(&body.plan).map_err(|e| ApiError::invalid("plan", e))
}

async fn subscribe<T: Table>(billing: &Billing<T>, caller: &Caller, req: &Request) -> api::Answer {
    let (w, asker) = caller.workspace_payer()?;
    let idem = api::idempotency_key(req, &workspace_scope(w))?;
    let plan = chosen_plan(req)?;
    let m = Mutation::new(&idem, &answers::subscription_checkout);
    api::replied(billing.start_subscription(w, asker, plan, m).await)
}

async fn cancel_subscription<T: Table>(billing: &Billing<T>, caller: &Caller, req: &Request) -> api::Answer {
    let (w, asker) = caller.workspace_payer()?;
    let idem = api::idempotency_key(req, &workspace_scope(w))?;
    let m = Mutation::new(&idem, &answers::subscription_cancelled);
    api::replied(billing.cancel_subscription(w, asker, m).await)
}

async fn change_plan<T: Table>(billing: &Billing<T>, caller: &Caller, req: &Request) -> api::Answer {
    let (w, asker) = caller.workspace_payer()?;
    let idem = api::idempotency_key(req, &workspace_scope(w))?;
    let plan = chosen_plan(req)?;
    let m = Mutation::new(&idem, &answers::plan_changed);
    api::replied(billing.change_plan(w, asker, plan, m).await)
}

async fn add_billed_addon<T: Table>(billing: &Billing<T>, caller: &Caller, req: &Request) -> api::Answer {
    let (w, asker) = caller.workspace_payer()?;
    let idem = api::idempotency_key(req, &workspace_scope(w))?;
    let body: BilledAddon = api::json_body(req)?;
    let code = AddonCode::parse(&body.addon).map_err(|e| ApiError::invalid("addon", e))?;
    let quantity = check_quantity(body.quantity).map_err(|e| ApiError::invalid("quantity", e))?;
    let m = Mutation::new(&idem, &answers::addon_billed);
    api::replied(billing.add_billed_addon(w, asker, code, quantity, m).await)
}

async fn end_billed_addon<T: Table>(billing: &Billing<T>, caller: &Caller, req: &Request) -> api::Answer {
    let (w, asker) = caller.workspace_payer()?;
    let idem = api::idempotency_key(req, &workspace_scope(w))?;
    let id = AddonId::parse(&api::path_param(req, "addon_id")?).map_err(|_| ApiError::not_found("add-on"))?;
    let m = Mutation::new(&idem, &answers::workspace_changed);
    api::replied(billing.end_billed_addon(w, asker, &id, m).await)
}

async fn invoices<T: Table>(billing: &Billing<T>, caller: &Caller, req: &Request) -> api::Answer {
    let w = caller.workspace_reader()?;
    let (limit, after) = api::invoice_page(req)?;
    let ws = billing.caller_workspace(w, caller.partner.as_ref()).await?;
    Ok(api::ok(answers::InvoicesBody::from(&billing.invoices(&ws, limit, after.as_ref()).await?)))
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
