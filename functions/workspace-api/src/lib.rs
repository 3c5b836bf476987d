//! A workspace's own view: plan, effective limits, usage, status, balance, add-ons on offer
//! (labels and points, never cost prices), the top-up options and credit rate it may pay with
//! (never the wholesale cost), and its ledger. Admins and members may read.

use lambda_http::{Body, Request, Response};
use shared::http::{self, ApiError, Caller};
use shared::ops::Billing;
use shared::store::Table;

pub const ROUTES: &[&str] =
    &["GET /workspace", "GET /workspace/addons", "GET /workspace/topup-options", "GET /workspace/ledger"];

pub async fn handle<T: Table>(billing: &Billing<T>, req: Request) -> Response<Body> {
    http::finish(route(billing, &req).await)
}

async fn route<T: Table>(billing: &Billing<T>, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = Caller::from_request(req)?;
    let Some(route) = http::route_key(req).filter(|r| ROUTES.contains(&r.as_str())) else {
        return Err(ApiError::route_not_found());
    };
    let w = caller.workspace_reader()?;
    match route.as_str() {
        "GET /workspace" => {
            let ws = billing.caller_workspace(w, caller.partner.as_ref()).await?;
            Ok(http::ok(billing.workspace_details(&ws).await?))
        }
        "GET /workspace/addons" => {
            let ws = billing.caller_workspace(w, caller.partner.as_ref()).await?;
            Ok(http::ok(billing.workspace_addons(&ws).await?))
        }
        "GET /workspace/topup-options" => Ok(http::ok(billing.workspace_topup_options(w).await?)),
        "GET /workspace/ledger" => {
            let (limit, cursor) = (http::page_size(req)?, http::ledger_cursor(req)?);
            billing.caller_workspace(w, caller.partner.as_ref()).await?;
            Ok(http::ok(billing.workspace_ledger(w, cursor.as_ref(), limit).await?))
        }
        other => unreachable!("route {other} is in ROUTES but not handled"),
    }
}
