//! A workspace's own view: plan, effective limits, usage, status, balance, add-ons on offer
//! (labels and points, never cost prices), the top-up options and credit rate it may pay with
//! (never the wholesale cost), its saved card, its ledger and its monthly statements. Admins and members may read; who
//! manages its billing sets auto top-up.

use api::{ApiError, Caller, answers, workspace_scope};
use billing::{AutoTopupTerms, Billing, Mutation};
use domain::{Points, TopupOptionId, WalletId};
use lambda_http::Request;
use serde::Deserialize;
use store::{LedgerCursor, Table};

api::routes!(
    route;
    "GET /workspace",
    "GET /workspace/addons",
    "GET /workspace/topup-options",
    "GET /workspace/ledger",
    "GET /workspace/statements/{month}",
    "GET /workspace/card",
    "PUT /workspace/auto-topup",
    "GET /workspace/plans",
    "GET /workspace/subscription",
);

async fn route<T: Table>(billing: &Billing<T>, caller: &Caller, route: &str, req: &Request) -> api::Answer {
    if route == "PUT /workspace/auto-topup" {
        let (w, asker) = caller.workspace_payer()?;
        let idem = api::idempotency_key(req, &workspace_scope(w))?;
        let body: AutoTopupBody = api::json_body(req)?;
        let option = body
            .topup_option_id
            .map(|id| {
                TopupOptionId::parse(&id).map_err(|_| ApiError::invalid("topup_option_id", "no such top-up option"))
            })
            .transpose()?;
        let terms = AutoTopupTerms {
            enabled: body.enabled,
            option,
            points: body.points,
            threshold: body.threshold,
            monthly_cap_minor: body.monthly_cap_minor,
        };
        let reply = billing.put_auto_topup(w, asker, terms, Mutation::new(&idem, &answers::auto_topup_set)).await?;
        return Ok(api::reply(reply));
    }
    let w = caller.workspace_reader()?;
    match route {
        "GET /workspace" => {
            let ws = billing.caller_workspace(w, caller.partner.as_ref()).await?;
            Ok(api::ok(answers::WorkspaceBody::from(&billing.workspace_details(&ws).await?)))
        }
        "GET /workspace/addons" => {
            let ws = billing.caller_workspace(w, caller.partner.as_ref()).await?;
            Ok(api::ok(answers::WorkspaceAddonsBody::from(&billing.workspace_addons(&ws).await?)))
        }
        "GET /workspace/topup-options" => {
            // The token's partner must be the workspace's: another partner's options are not found.
            let ws = billing.caller_workspace(w, caller.partner.as_ref()).await?;
            Ok(api::ok(answers::TopupOffersBody::from(&billing.workspace_topup_options(&ws).await?)))
        }
        "GET /workspace/card" => {
            let ws = billing.caller_workspace(w, caller.partner.as_ref()).await?;
            Ok(api::ok(answers::CardBody::from(billing.workspace_card(&ws).await?.as_ref())))
        }
        "GET /workspace/ledger" => {
            let wallet = WalletId::Workspace(w.clone());
            let page = api::page_request(req, |c| LedgerCursor::decode(c, &wallet))?;
            billing.caller_workspace(w, caller.partner.as_ref()).await?;
            Ok(api::ok(answers::ledger_page(&billing.workspace_ledger(w, page).await?)))
        }
        "GET /workspace/statements/{month}" => {
            let wallet = WalletId::Workspace(w.clone());
            let (month, format) = api::statement_query(req)?;
            let page = api::statement_page_request(req, |c| LedgerCursor::decode(c, &wallet))?;
            billing.caller_workspace(w, caller.partner.as_ref()).await?;
            let (first_page, limit) = (page.after.is_none(), page.limit);
            let statement = Box::pin(billing.statement(&wallet, month, page)).await?;
            Ok(answers::statement(&statement, format, first_page, limit))
        }
        "GET /workspace/plans" => {
            let ws = billing.caller_workspace(w, caller.partner.as_ref()).await?;
            Ok(api::ok(answers::PlanOffersBody::from(&billing.plan_offers(&ws).await?)))
        }
        "GET /workspace/subscription" => {
            let ws = billing.caller_workspace(w, caller.partner.as_ref()).await?;
            Ok(api::ok(answers::SubscriptionDetailsBody::from(&billing.subscription_details(&ws).await?)))
        }
        other => unreachable!("route {other} is in ROUTES but not handled"),
    }
}

/// `PUT /workspace/auto-topup`: `{"enabled": true, "topup_option_id": "to_..."}` or
/// `{"enabled": true, "points": "120"}` (at the partner's credit rate), with an optional
/// `"threshold": "5"` and `"monthly_cap_minor": 5000`; or `{"enabled": false}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AutoTopupBody {
    enabled: bool,
    topup_option_id: Option<String>,
    /// Points to buy at the partner's credit rate each time, instead of an option.
    points: Option<Points>,
    /// Refill when a debit (usage) leaves the balance below this many points.
    threshold: Option<Points>,
    /// The most auto top-up may charge in a calendar month, in the option's minor units.
    monthly_cap_minor: Option<i64>,
}
