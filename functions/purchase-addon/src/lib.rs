//! Add-ons: a workspace sees what one would cost, buys one with points (prorated to the cycle's
//! end) or cancels one at the cycle end; its partner adds one (free unless `charge_points`) or
//! removes one now.

use api::{ApiError, Caller, answers, partner_scope, workspace_scope};
use billing::{AddonOrder, Asker, Billing, Mutation};
use domain::{AddonCode, AddonId, WorkspaceId, check_quantity};
use lambda_http::Request;
use serde::Deserialize;
use store::Table;

api::routes! {
    "GET /workspace/addons/quote" => quote,
    "POST /workspace/addons" => buy,
    "DELETE /workspace/addons/{addon_id}" => cancel,
    "POST /partner/workspace/{id}/add-addon" => partner_add,
    "DELETE /partner/workspaces/{id}/addons/{addon_id}" => partner_remove,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Buy {
    addon: String,
    quantity: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartnerAdd {
    addon: String,
    quantity: u32,
    #[serde(default)]
    charge_points: bool,
}

fn order(addon: &str, quantity: u32) -> Result<(AddonCode, u32), ApiError> {
    let code = AddonCode::parse(addon).map_err(|e| ApiError::invalid("addon", e))?;
    let quantity = check_quantity(quantity).map_err(|e| ApiError::invalid("quantity", e))?;
    Ok((code, quantity))
}

/// Ids that can't be valid can't exist: not found, like any other unknown id.
fn workspace_id(req: &Request) -> Result<WorkspaceId, ApiError> {
    WorkspaceId::parse(&api::path_param(req, "id")?).map_err(|_| ApiError::not_found("workspace"))
}

fn addon_id(req: &Request) -> Result<AddonId, ApiError> {
    AddonId::parse(&api::path_param(req, "addon_id")?).map_err(|_| ApiError::not_found("add-on"))
}

/// The price of `?addon=extra_bot&quantity=1` now and per month, before the purchase: any
/// user of the workspace may read it.
async fn quote<T: Table>(billing: &Billing<T>, caller: &Caller, req: &Request) -> api::Answer {
    let w = caller.workspace_reader()?;
    let addon = api::query_param(req, "addon").ok_or_else(|| ApiError::invalid("addon", "give ?addon="))?;
    let quantity = match api::query_param(req, "quantity") {
        None => 1,
        Some(q) => q.parse().map_err(|_| ApiError::invalid("quantity", "must be a whole number"))?,
    };
    let (code, quantity) = order(&addon, quantity)?;
    let ws = billing.caller_workspace(w, caller.partner.as_ref()).await?;
    let quote = billing.quote_addon(&ws, code, quantity).await?;
    Ok(api::ok(answers::AddonQuoteBody::from(&quote)))
}

async fn buy<T: Table>(billing: &Billing<T>, caller: &Caller, req: &Request) -> api::Answer {
    let (w, asker) = caller.workspace_payer()?;
    let idem = api::idempotency_key(req, &workspace_scope(w))?;
    let body: Buy = api::json_body(req)?;
    let (code, quantity) = order(&body.addon, body.quantity)?;
    let order = AddonOrder { code, quantity, by_partner: false, charge: true, actor: caller.actor() };
    let m = Mutation::new(&idem, &answers::addon_added);
    api::replied(billing.add_addon(w, asker, &order, m).await)
}

async fn cancel<T: Table>(billing: &Billing<T>, caller: &Caller, req: &Request) -> api::Answer {
    let (w, asker) = caller.workspace_payer()?;
    let id = addon_id(req)?;
    let idem = api::idempotency_key(req, &workspace_scope(w))?;
    let m = Mutation::new(&idem, &answers::addon_cancelled);
    api::replied(billing.cancel_addon(w, asker, &id, m).await)
}

async fn partner_add<T: Table>(billing: &Billing<T>, caller: &Caller, req: &Request) -> api::Answer {
    // A partner the platform suspended is refused by the change, in its one read.
    let p = caller.partner_admin()?;
    let w = workspace_id(req)?;
    let idem = api::idempotency_key(req, &partner_scope(p))?;
    let body: PartnerAdd = api::json_body(req)?;
    let (code, quantity) = order(&body.addon, body.quantity)?;
    let order = AddonOrder { code, quantity, by_partner: true, charge: body.charge_points, actor: caller.actor() };
    api::replied(billing.add_addon(&w, Asker::Partner(p), &order, Mutation::new(&idem, &answers::addon_added)).await)
}

async fn partner_remove<T: Table>(billing: &Billing<T>, caller: &Caller, req: &Request) -> api::Answer {
    // A partner the platform suspended is refused by the change, in its one read.
    let p = caller.partner_admin()?;
    let w = workspace_id(req)?;
    let id = addon_id(req)?;
    let idem = api::idempotency_key(req, &partner_scope(p))?;
    api::replied(billing.remove_addon(p, &w, &id, Mutation::new(&idem, &answers::workspace_changed)).await)
}
