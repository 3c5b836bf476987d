//! The platform's side: it reports what a workspace uses (which pauses or resumes it) and asks
//! what a workspace is entitled to.

use lambda_http::{Body, Request, Response};
use shared::domain::{Usage, WorkspaceId};
use shared::http::{self, ApiError, Caller, PLATFORM_SCOPE};
use shared::ops::Billing;
use shared::store::Table;

pub const ROUTES: &[&str] =
    &["PUT /platform/workspaces/{id}/usage-counts", "GET /platform/workspaces/{id}/entitlements"];

pub async fn handle<T: Table>(billing: &Billing<T>, req: Request) -> Response<Body> {
    http::handled(&req, route(billing, &req)).await
}

async fn route<T: Table>(billing: &Billing<T>, req: &Request) -> Result<Response<Body>, ApiError> {
    let caller = Caller::from_request(req)?;
    let route = http::route_key(req);
    if !route.as_deref().is_some_and(|r| ROUTES.contains(&r)) {
        return Err(ApiError::route_not_found());
    }
    caller.platform_service()?;
    let w = WorkspaceId::parse(&http::path_param(req, "id")?).map_err(|_| ApiError::not_found("workspace"))?;
    match route.as_deref() {
        Some("PUT /platform/workspaces/{id}/usage-counts") => {
            let idem = http::idempotency_key(req, PLATFORM_SCOPE)?;
            let usage: Usage = http::json_body(req)?;
            Ok(http::reply(billing.report_usage(&w, usage, &idem).await?))
        }
        _ => {
            let ws = billing.workspace(&w).await?;
            Ok(http::ok(billing.entitlements(&ws).await?))
        }
    }
}
