//! The platform's side: it reports what a workspace uses (counts that pause or resume it, and
//! metered usage that its partner's wallet and, when re-billed, its own pay for), asks what a
//! workspace is entitled to and whether it may use a meter now, and keeps its partners' wallets
//! (prepaid or postpaid, credits and corrections).

use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use shared::domain::{MeterCode, PartnerId, PointsDelta, Usage, WalletMode, WorkspaceId};
use shared::http::{self, ApiError, Caller, PLATFORM_SCOPE};
use shared::ops::{Billing, UsageEvent};
use shared::store::Table;

pub const ROUTES: &[&str] = &[
    "PUT /platform/workspaces/{id}/usage-counts",
    "GET /platform/workspaces/{id}/entitlements",
    "POST /platform/usage",
    "GET /platform/workspaces/{id}/access",
    "PUT /platform/partners/{id}/billing",
    "POST /platform/partners/{id}/wallet/adjustments",
];

pub async fn handle<T: Table>(billing: &Billing<T>, req: Request) -> Response<Body> {
    http::handled(&req, route(billing, &req)).await
}

async fn route<T: Table>(billing: &Billing<T>, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = Caller::from_request(req)?;
    let route = http::route_key(req);
    let Some(route) = route.as_deref().filter(|r| ROUTES.contains(r)) else {
        return Err(ApiError::route_not_found());
    };
    caller.platform_service()?;
    match route {
        // The event id is the idempotency key: the platform sends each usage event once per id,
        // and a retry with the same id and body is answered as the first time.
        "POST /platform/usage" => {
            let event: UsageEvent = http::json_body(req)?;
            Ok(http::reply(billing.record_usage(&event).await?))
        }
        "PUT /platform/partners/{id}/billing" => {
            let p = partner_id(req)?;
            let idem = http::idempotency_key(req, PLATFORM_SCOPE)?;
            let body: BillingBody = http::json_body(req)?;
            let mode = WalletMode::parse(&body.mode)
                .ok_or_else(|| ApiError::invalid("mode", "must be \"prepaid\" or \"postpaid\""))?;
            Ok(http::reply(billing.put_partner_billing(&p, mode, &idem).await?))
        }
        "POST /platform/partners/{id}/wallet/adjustments" => {
            let p = partner_id(req)?;
            let idem = http::idempotency_key(req, PLATFORM_SCOPE)?;
            let body: Adjustment = http::json_body(req)?;
            if body.amount.is_zero() {
                return Err(ApiError::invalid("amount", "must not be zero"));
            }
            Ok(http::reply(billing.adjust_partner_wallet(&p, body.amount, &body.reason, caller.actor(), &idem).await?))
        }
        _ => {
            let w = WorkspaceId::parse(&http::path_param(req, "id")?).map_err(|_| ApiError::not_found("workspace"))?;
            match route {
                "PUT /platform/workspaces/{id}/usage-counts" => {
                    let idem = http::idempotency_key(req, PLATFORM_SCOPE)?;
                    let usage: Usage = http::json_body(req)?;
                    Ok(http::reply(billing.report_usage(&w, usage, &idem).await?))
                }
                "GET /platform/workspaces/{id}/access" => {
                    let meter = http::query_param(req, "meter")
                        .ok_or_else(|| ApiError::invalid("meter", "required"))
                        .and_then(|m| MeterCode::parse(&m).map_err(|e| ApiError::invalid("meter", e)))?;
                    Ok(http::ok(billing.access(&w, &meter).await?))
                }
                _ => {
                    let ws = billing.workspace(&w).await?;
                    Ok(http::ok(billing.entitlements(&ws).await?))
                }
            }
        }
    }
}

fn partner_id(req: &Request) -> Result<PartnerId, ApiError> {
    PartnerId::parse(&http::path_param(req, "id")?).map_err(|_| ApiError::not_found("partner"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BillingBody {
    mode: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Adjustment {
    /// Signed: a credit (a payment the platform received) or, with a minus sign, a debit.
    amount: PointsDelta,
    reason: String,
}
