//! A partner adjusts a workspace's points: a bonus, or a deduction with a minus sign, always
//! with a reason; the ledger entry names who did it.

use api::{ApiError, Caller, partner_scope};
use billing::{Billing, PointsAdjustment};
use domain::{PRICE_DP, PointsDelta, WorkspaceId};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use store::Table;

pub const ROUTES: &[&str] = &["POST /partner/workspaces/{id}/points"];

pub async fn handle<T: Table>(billing: &Billing<T>, req: Request) -> Response<Body> {
    api::handled(&req, route(billing, &req)).await
}

async fn route<T: Table>(billing: &Billing<T>, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = Caller::from_request(req)?;
    match api::route_key(req).as_deref() {
        Some("POST /partner/workspaces/{id}/points") => adjust(billing, &caller, req).await,
        _ => Err(ApiError::route_not_found()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Adjust {
    amount: PointsDelta,
    reason: String,
    #[serde(default)]
    allow_negative: bool,
}

async fn adjust<T: Table>(billing: &Billing<T>, caller: &Caller, req: &Request) -> Result<Response<Body>, ApiError> {
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
    Ok(api::reply(billing.adjust_points(p, &w, adjustment, &idem).await?))
}
