//! A partner adjusts a workspace's points: a bonus, or a deduction with a minus sign, always
//! with a reason; the ledger entry names who did it.

use api::{ApiError, Caller, partner_scope};
use billing::{Billing, Mutation, PointsAdjustment};
use domain::{PRICE_DP, PointsDelta, WorkspaceId};
use lambda_http::Request;
use serde::Deserialize;
use store::Table;

api::routes! {
    "POST /partner/workspaces/{id}/points" => adjust,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Adjust {
    amount: PointsDelta,
    reason: String,
    #[serde(default)]
    allow_negative: bool,
}

async fn adjust<T: Table>(billing: &Billing<T>, caller: &Caller, req: &Request) -> api::Answer {
    // A partner the platform suspended is refused by the change, in its one read.
    let p = caller.partner_admin()?;
    let w = WorkspaceId::parse(&api::path_param(req, "id")?).map_err(|_| ApiError::not_found("workspace"))?;
    let idem = api::idempotency_key(req, &partner_scope(p))?;
    let body: Adjust = api::json_body(req)?;
    // A partner sets amounts like prices: at most 2 decimal places, and never zero.
    if body.amount.as_decimal().normalize().scale() > PRICE_DP {
        return Err(ApiError::invalid("amount", format!("must have at most {PRICE_DP} decimal places")));
    }
    if body.amount.is_zero() {
        return Err(ApiError::invalid("amount", "must not be zero"));
    }
    let adjustment = PointsAdjustment {
        amount: body.amount,
        reason: body.reason,
        allow_negative: body.allow_negative,
        actor: caller.actor(),
    };
    api::replied(billing.adjust_points(p, &w, adjustment, Mutation::new(&idem, &api::answers::points_adjusted)).await)
}
