//! The platform's side: it reports what a workspace uses (counts that pause or resume it, and
//! metered usage that its partner's wallet and, when re-billed, its own pay for), asks what a
//! workspace is entitled to and whether it may use a meter now, signs its partners up (their
//! terms, suspension and reinstatement) and keeps their wallets (prepaid or postpaid, credits
//! and corrections).
//!
//! A usage event refused (403) prints one metric line (Embedded Metric Format, see
//! `runtime::metrics`): `UsageRefused`, per reason.

use lambda_http::Request;
use std::collections::BTreeMap;

use api::{ApiError, Caller, PLATFORM_SCOPE, answers};
use billing::{Billing, Mutation, NewPartner, OpError, PartnerTerms, UsageEvent};
use domain::{AccessDenied, MeterCode, PartnerId, PointsDelta, Usage, WalletMode, WholesaleFloors, WorkspaceId};
use runtime::metrics::{FUNCTION as BY_FUNCTION, MetricLine, Unit};
use serde::Deserialize;
use store::{PartnerCursor, Table};

api::routes!(
    route;
    "PUT /platform/workspaces/{id}/usage-counts",
    "GET /platform/workspaces/{id}/entitlements",
    "POST /platform/usage",
    "GET /platform/workspaces/{id}/access",
    "PUT /platform/partners/{id}/billing",
    "POST /platform/partners/{id}/wallet/adjustments",
    "POST /platform/partners",
    "GET /platform/partners",
    "GET /platform/partners/{id}",
    "PUT /platform/partners/{id}/terms",
    "POST /platform/partners/{id}/suspend",
    "POST /platform/partners/{id}/reinstate",
);

async fn route<T: Table>(billing: &Billing<T>, caller: &Caller, route: &str, req: &Request) -> api::Answer {
    caller.platform_service()?;
    match route {
        // The event id is the idempotency key: the platform sends each usage event once per id,
        // and a retry with the same id and body is answered as the first time.
        "POST /platform/usage" => {
            let event: UsageEvent = api::json_body(req)?;
            let recorded = billing.record_usage(&event, &answers::usage_recorded).await;
            if let Err(OpError::AccessDenied(why)) = &recorded {
                usage_refused(*why).emit();
            }
            api::replied(recorded)
        }
        "POST /platform/partners" => {
            let idem = api::idempotency_key(req, PLATFORM_SCOPE)?;
            let body: CreatePartner = api::json_body(req)?;
            let id = PartnerId::parse(&body.id).map_err(|e| ApiError::invalid("id", e))?;
            let terms = match body.terms {
                Some(t) => terms(t, "terms.")?,
                None => PartnerTerms { floors: None, billing_mode: WalletMode::Prepaid },
            };
            let new = NewPartner { id, name: body.name, terms };
            api::replied(billing.onboard_partner(&new, Mutation::new(&idem, &answers::partner_created)).await)
        }
        "GET /platform/partners" => {
            let page = api::page_request(req, PartnerCursor::decode)?;
            Ok(api::ok(answers::Page::of(&billing.list_partners(page).await?, answers::PartnerRefBody::from)))
        }
        "GET /platform/partners/{id}" => {
            Ok(api::ok(answers::PartnerBody::from(&billing.platform_partner(&partner_id(req)?).await?)))
        }
        "PUT /platform/partners/{id}/terms" => {
            let p = partner_id(req)?;
            let idem = api::idempotency_key(req, PLATFORM_SCOPE)?;
            let body: TermsBody = api::json_body(req)?;
            // A replacement: the billing mode is said, not left to a default.
            if body.billing_mode.is_none() {
                return Err(ApiError::invalid("billing_mode", "required: \"prepaid\" or \"postpaid\""));
            }
            let t = terms(body, "")?;
            api::replied(billing.put_partner_terms(&p, &t, Mutation::new(&idem, &answers::partner_changed)).await)
        }
        "POST /platform/partners/{id}/suspend" => {
            let p = partner_id(req)?;
            let idem = api::idempotency_key(req, PLATFORM_SCOPE)?;
            let body: Suspend = api::json_body(req)?;
            let m = Mutation::new(&idem, &answers::partner_changed);
            api::replied(billing.suspend_partner(&p, &body.reason, m).await)
        }
        "POST /platform/partners/{id}/reinstate" => {
            let p = partner_id(req)?;
            let idem = api::idempotency_key(req, PLATFORM_SCOPE)?;
            api::replied(billing.reinstate_partner(&p, Mutation::new(&idem, &answers::partner_changed)).await)
        }
        "PUT /platform/partners/{id}/billing" => {
            let p = partner_id(req)?;
            let idem = api::idempotency_key(req, PLATFORM_SCOPE)?;
            let body: BillingBody = api::json_body(req)?;
            let mode = WalletMode::parse(&body.mode)
                .ok_or_else(|| ApiError::invalid("mode", "must be \"prepaid\" or \"postpaid\""))?;
            api::replied(billing.put_partner_billing(&p, mode, Mutation::new(&idem, &answers::billing_mode_set)).await)
        }
        "POST /platform/partners/{id}/wallet/adjustments" => {
            let p = partner_id(req)?;
            let idem = api::idempotency_key(req, PLATFORM_SCOPE)?;
            let body: Adjustment = api::json_body(req)?;
            if body.amount.is_zero() {
                return Err(ApiError::invalid("amount", "must not be zero"));
            }
            let m = Mutation::new(&idem, &answers::points_adjusted);
            api::replied(billing.adjust_partner_wallet(&p, body.amount, &body.reason, caller.actor(), m).await)
        }
        _ => {
            let w = WorkspaceId::parse(&api::path_param(req, "id")?).map_err(|_| ApiError::not_found("workspace"))?;
            match route {
                "PUT /platform/workspaces/{id}/usage-counts" => {
                    let idem = api::idempotency_key(req, PLATFORM_SCOPE)?;
                    let usage: Usage = api::json_body(req)?;
                    let m = Mutation::new(&idem, &answers::workspace_changed);
                    api::replied(billing.report_usage(&w, usage, m).await)
                }
                "GET /platform/workspaces/{id}/access" => {
                    let meter = api::query_param(req, "meter")
                        .ok_or_else(|| ApiError::invalid("meter", "required"))
                        .and_then(|m| MeterCode::parse(&m).map_err(|e| ApiError::invalid("meter", e)))?;
                    billing.access(&w, &meter).await?;
                    Ok(api::ok(answers::AccessBody::allowed(&w, &meter)))
                }
                _ => {
                    let ws = billing.workspace(&w).await?;
                    Ok(api::ok(answers::EntitlementsBody::from(&billing.entitlements(&ws).await?)))
                }
            }
        }
    }
}

/// The value of the metrics' `Function` dimension.
pub const FUNCTION: &str = "platform-api";

/// A usage event refused: counted per function, and per `Reason`, the 403's code, which names the
/// level that refused it: `partner_suspended` (the partner), `paused` (the workspace, over its
/// plan's limits), `wallet_depleted` (the workspace's wallet, for a meter it is re-billed for),
/// `partner_wallet_depleted` (a prepaid partner's wallet).
pub fn usage_refused(why: AccessDenied) -> MetricLine {
    MetricLine::new(FUNCTION).dimension("Reason", why.code()).metric(
        "UsageRefused",
        1_u64.into(),
        Unit::Count,
        &[&[BY_FUNCTION], &[BY_FUNCTION, "Reason"]],
    )
}

fn partner_id(req: &Request) -> Result<PartnerId, ApiError> {
    PartnerId::parse(&api::path_param(req, "id")?).map_err(|_| ApiError::not_found("partner"))
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

/// `POST /platform/partners`: the platform chooses the id (the partner's JWT `partner_id`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreatePartner {
    id: String,
    name: String,
    terms: Option<TermsBody>,
}

/// The platform's terms: `wholesale_floors` absent or null follows the deployment's default.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TermsBody {
    wholesale_floors: Option<BTreeMap<String, String>>,
    billing_mode: Option<String>,
}

/// The terms with each refusal's field under `prefix`; a billing mode not given is prepaid (a
/// new partner's wallet pays down; postpaid is the platform's choice).
fn terms(body: TermsBody, prefix: &str) -> Result<PartnerTerms, ApiError> {
    let floors = body
        .wholesale_floors
        .map(|m| {
            WholesaleFloors::from_pairs(m.iter().map(|(c, p)| (c.as_str(), p.as_str()))).map_err(|e| {
                let field = if e.param.is_empty() { String::new() } else { format!(".{}", e.param) };
                ApiError::invalid(&format!("{prefix}wholesale_floors{field}"), e.message)
            })
        })
        .transpose()?;
    let billing_mode = match body.billing_mode {
        Some(m) => WalletMode::parse(&m).ok_or_else(|| {
            ApiError::invalid(&format!("{prefix}billing_mode"), "must be \"prepaid\" or \"postpaid\"")
        })?,
        None => WalletMode::Prepaid,
    };
    Ok(PartnerTerms { floors, billing_mode })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Suspend {
    reason: String,
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn a_refused_usage_event_is_counted_per_level() {
        let cases = [
            (AccessDenied::PartnerSuspended, "partner_suspended"),
            (AccessDenied::Paused, "paused"),
            (AccessDenied::WalletDepleted, "wallet_depleted"),
            (AccessDenied::PartnerWalletDepleted, "partner_wallet_depleted"),
        ];
        for (why, reason) in cases {
            let line: Value = serde_json::from_str(&usage_refused(why).to_json(0)).unwrap();
            assert_eq!(
                (&line["Function"], &line["Reason"], &line["UsageRefused"]),
                (&json!(FUNCTION), &json!(reason), &json!(1))
            );
            assert_eq!(
                line["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
                json!([["Function"], ["Function", "Reason"]])
            );
        }
    }
}
