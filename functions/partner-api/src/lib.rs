//! A partner's side: settings, add-on prices and labels, plans, top-up options and the credit
//! rate, workspaces, the ledger and monthly statements, and the connection of its Stripe account.

use api::{ApiError, Caller, answers, partner_scope};
use billing::{
    Asker, BalanceAlerts, Billing, BillingAccess, ListedStatus, MAX_TOPUP_OPTIONS, Mutation, PartnerRefillTerms,
    TopupOptionDraft, WorkspaceDraft,
};
use domain::{
    AddonCode, AddonId, AnchorDay, CreditRateTerms, Limits, Money, PartnerAddon, PartnerId, PartnerSettings, Plan,
    PlanId, Points, Rebilling, TopupOption, TopupOptionId, WalletId, WorkspaceId, check_label,
};
use lambda_http::Request;
use serde::Deserialize;
use store::{DeliveryCursor, EventCursor, LedgerCursor, PartnerLedgerCursor, Table, WorkspaceCursor};
use stripe_gateway::ids::OAuthCode;

api::routes!(
    route;
    "GET /partner/addons",
    "PUT /partner/addons/{code}",
    "GET /partner/plans",
    "GET /partner/plans/{id}",
    "PUT /partner/plans/{id}",
    "GET /partner/settings",
    "PUT /partner/settings",
    "GET /partner/topup-options",
    "PUT /partner/topup-options",
    "PUT /partner/credit-rate",
    "GET /partner/workspaces",
    "POST /partner/workspaces",
    "GET /partner/workspaces/{id}",
    "PUT /partner/workspaces/{id}/plan",
    "GET /partner/workspaces/{id}/subscription",
    "GET /partner/workspaces/{id}/invoices",
    "DELETE /partner/workspaces/{id}/subscription/addons/{addon_id}",
    "GET /partner/ledger",
    "GET /partner/statements/{month}",
    "GET /partner/workspaces/{id}/statements/{month}",
    "GET /partner/wallet/statements/{month}",
    "GET /partner/stripe",
    "POST /partner/stripe/connect",
    "GET /partner/events",
    "PUT /partner/workspaces/{id}/rebilling",
    "GET /partner/workspaces/{id}/billing-managers",
    "POST /partner/workspaces/{id}/billing-managers",
    "POST /partner/workspaces/{id}/billing-managers/revoke",
    "GET /partner/wallet",
    "POST /partner/wallet/checkout",
    "PUT /partner/wallet/auto-refill",
    "GET /partner/wallet/card",
    "POST /partner/wallet/card",
    "DELETE /partner/wallet/card",
    "GET /partner/webhook",
    "PUT /partner/webhook",
    "POST /partner/webhook/secret",
    "GET /partner/webhook/deliveries",
    "POST /partner/webhook/deliveries/{id}/replay",
    "GET /partner/balance-alerts",
    "PUT /partner/balance-alerts",
);

async fn route<T: Table>(billing: &Billing<T>, caller: &Caller, route: &str, req: &Request) -> api::Answer {
    let p = caller.partner_admin()?;
    // A partner the platform suspended can do nothing here until it is reinstated. A change
    // refuses it in its one read, with its idempotency record and the items it decides on.
    if !api::is_mutation(req.method()) {
        billing.partner_admin_gate(p).await?;
    }
    // Every change carries an Idempotency-Key scoped to the partner.
    let idem = if api::is_mutation(req.method()) { Some(api::idempotency_key(req, &partner_scope(p))?) } else { None };
    let idem = || idem.as_ref().expect("mutations have a key");
    match route {
        "GET /partner/addons" => {
            let addons = billing.partner_addons(p).await?;
            Ok(api::ok(answers::List::new(addons.iter().map(answers::PartnerAddonBody::from).collect())))
        }
        "PUT /partner/addons/{code}" => {
            let code = AddonCode::parse(&api::path_param(req, "code")?).map_err(|_| ApiError::not_found("add-on"))?;
            let body: AddonTerms = api::json_body(req)?;
            let label = check_label(&body.label).map_err(|e| ApiError::invalid("label", e))?;
            body.points.check_price().map_err(|e| ApiError::invalid("points", e))?;
            if let Some(price) = body.price {
                price.check_chargeable().map_err(|e| ApiError::invalid("price", e))?;
            }
            let addon = PartnerAddon { code, label, points: body.points, price: body.price, enabled: body.enabled };
            api::replied(billing.put_partner_addon(p, &addon, Mutation::new(idem(), &answers::partner_addon_set)).await)
        }
        "GET /partner/plans" => {
            let plans = billing.plans(p).await?;
            Ok(api::ok(answers::List::new(plans.iter().map(answers::PlanBody::from).collect())))
        }
        "GET /partner/plans/{id}" => {
            let id = plan_id(req)?;
            billing.partner_settings(p).await?;
            Ok(api::ok(answers::PlanBody::from(&billing.plan(p, id).await?)))
        }
        "PUT /partner/plans/{id}" => {
            let id = plan_id(req)?;
            let body: PlanTerms = api::json_body(req)?;
            let label = check_label(&body.label).map_err(|e| ApiError::invalid("label", e))?;
            let plan = Plan { id, label, limits: body.limits, monthly_price: body.monthly_price };
            api::replied(billing.put_plan(p, &plan, Mutation::new(idem(), &answers::plan_set)).await)
        }
        "GET /partner/events" => {
            let page = api::page_request(req, |c| EventCursor::decode(c, p))?;
            Ok(api::ok(answers::Page::of(&billing.partner_events(p, page).await?, answers::EventBody::from)))
        }
        "GET /partner/stripe" => {
            billing.partner_settings(p).await?;
            let connection = billing.stripe_connection(p).await?;
            Ok(api::ok(answers::StripeBody::new(connection.as_ref())))
        }
        "POST /partner/stripe/connect" => {
            let body: Connect = api::json_body(req)?;
            let code = OAuthCode::parse(&body.code).map_err(|e| ApiError::invalid("code", e))?;
            api::replied(billing.connect_stripe(p, &code, Mutation::new(idem(), &answers::stripe_connected)).await)
        }
        "GET /partner/settings" => Ok(api::ok(billing.partner_settings(p).await?)),
        "PUT /partner/settings" => {
            let settings: PartnerSettings = api::json_body(req)?;
            let m = Mutation::new(idem(), &answers::settings_set);
            api::replied(billing.put_partner_settings(p, &settings, m).await)
        }
        "GET /partner/topup-options" => {
            Ok(api::ok(answers::PartnerTopupTermsBody::from(&billing.partner_topup_options(p).await?)))
        }
        "PUT /partner/topup-options" => {
            let drafts = topup_drafts(api::json_body(req)?)?;
            api::replied(billing.put_topup_options(p, drafts, Mutation::new(idem(), &answers::topup_options_set)).await)
        }
        "PUT /partner/credit-rate" => {
            let body: CreditRateBody = api::json_body(req)?;
            let terms = CreditRateTerms::parse(
                &body.currency,
                &body.price_per_point,
                body.min_points.as_deref(),
                body.max_points.as_deref(),
            )
            .map_err(|e| ApiError::invalid(e.param(), e))?;
            api::replied(billing.put_credit_rate(p, &terms, Mutation::new(idem(), &answers::credit_rate_set)).await)
        }
        "GET /partner/workspaces" => list_workspaces(billing, p, req).await,
        "POST /partner/workspaces" => {
            let body: CreateWorkspace = api::json_body(req)?;
            if body.id {
                return Err(ApiError::invalid("id", "workspace ids are assigned by the API"));
            }
            let plan = PlanId::parse(&body.plan).map_err(|e| ApiError::invalid("plan", e))?;
            let anchor = body
                .cycle_anchor_day
                .map(AnchorDay::new)
                .transpose()
                .map_err(|e| ApiError::invalid("cycle_anchor_day", e))?;
            let draft = WorkspaceDraft { name: body.name, plan, anchor };
            let m = Mutation::new(idem(), &answers::workspace_created);
            api::replied(billing.create_assigned_workspace(p, draft, m).await)
        }
        "GET /partner/workspaces/{id}" => {
            let ws = billing.partner_workspace(p, &workspace_id(req)?).await?;
            Ok(api::ok(answers::WorkspaceBody::from(&billing.workspace_details(&ws).await?)))
        }
        "PUT /partner/workspaces/{id}/plan" => {
            let w = workspace_id(req)?;
            let body: ChangePlan = api::json_body(req)?;
            let plan = PlanId::parse(&body.plan).map_err(|e| ApiError::invalid("plan", e))?;
            // A subscribed workspace's change is billed as the workspace's own would be; the
            // partner's answer is the workspace after it.
            let respond = |c: &billing::PlanChanged| answers::workspace_changed(&c.after);
            api::replied(billing.change_plan(&w, Asker::Partner(p), plan, Mutation::new(idem(), &respond)).await)
        }
        "GET /partner/workspaces/{id}/subscription" => {
            let ws = billing.partner_workspace(p, &workspace_id(req)?).await?;
            Ok(api::ok(answers::SubscriptionDetailsBody::from(&billing.subscription_details(&ws).await?)))
        }
        "GET /partner/workspaces/{id}/invoices" => {
            let ws = billing.partner_workspace(p, &workspace_id(req)?).await?;
            let (limit, after) = api::invoice_page(req)?;
            let page = billing.invoices(&ws, limit, after.as_ref()).await?;
            Ok(api::ok(answers::InvoicesBody::from(&page)))
        }
        "DELETE /partner/workspaces/{id}/subscription/addons/{addon_id}" => {
            let w = workspace_id(req)?;
            let id = AddonId::parse(&api::path_param(req, "addon_id")?).map_err(|_| ApiError::not_found("add-on"))?;
            let m = Mutation::new(idem(), &answers::workspace_changed);
            api::replied(billing.end_billed_addon(&w, Asker::Partner(p), &id, m).await)
        }
        "GET /partner/ledger" => {
            match api::query_param(req, "workspace_id") {
                // One workspace: its own ledger, read consistently.
                Some(w) => {
                    let w = WorkspaceId::parse(&w).map_err(|_| ApiError::not_found("workspace"))?;
                    let wallet = WalletId::Workspace(w.clone());
                    let page = api::page_request(req, |c| LedgerCursor::decode(c, &wallet))?;
                    billing.partner_workspace(p, &w).await?;
                    Ok(api::ok(answers::ledger_page(&billing.workspace_ledger(&w, page).await?)))
                }
                // All of them, from the partner-ledger index.
                None => {
                    let page = api::page_request(req, |c| PartnerLedgerCursor::decode(c, p))?;
                    Ok(api::ok(answers::partner_ledger_page(&billing.partner_ledger(p, page).await?)))
                }
            }
        }
        "GET /partner/statements/{month}" => {
            let (month, format) = api::statement_query(req)?;
            let page = api::page_request(req, |c| WorkspaceCursor::decode(c, p))?;
            let (first_page, limit) = (page.after.is_none(), page.limit);
            let after = page.after.as_ref().map(WorkspaceCursor::workspace);
            let statement = Box::pin(billing.partner_statement(p, month, after, limit)).await?;
            let next = statement.next_workspace.clone().map(|w| WorkspaceCursor::after(w).encode(p));
            Ok(answers::partner_statement(&statement, next.as_deref(), first_page, format, limit))
        }
        "GET /partner/workspaces/{id}/statements/{month}" => {
            let w = workspace_id(req)?;
            let wallet = WalletId::Workspace(w.clone());
            let (month, format) = api::statement_query(req)?;
            let page = api::statement_page_request(req, |c| LedgerCursor::decode(c, &wallet))?;
            billing.partner_workspace(p, &w).await?;
            let (first_page, limit) = (page.after.is_none(), page.limit);
            Ok(answers::statement(&Box::pin(billing.statement(&wallet, month, page)).await?, format, first_page, limit))
        }
        "GET /partner/wallet/statements/{month}" => {
            let wallet = WalletId::Partner(p.clone());
            let (month, format) = api::statement_query(req)?;
            let page = api::statement_page_request(req, |c| LedgerCursor::decode(c, &wallet))?;
            let (first_page, limit) = (page.after.is_none(), page.limit);
            Ok(answers::statement(&Box::pin(billing.statement(&wallet, month, page)).await?, format, first_page, limit))
        }
        "GET /partner/webhook" => Ok(api::ok(answers::endpoint(billing.partner_endpoint(p).await?.as_ref()))),
        "PUT /partner/webhook" => {
            let body: EndpointTerms = api::json_body(req)?;
            let m = Mutation::new(idem(), &answers::endpoint_changed);
            api::replied(billing.put_partner_endpoint(p, &body.url, body.enabled, m).await)
        }
        "POST /partner/webhook/secret" => {
            api::replied(billing.roll_endpoint_secret(p, Mutation::new(idem(), &answers::endpoint_changed)).await)
        }
        "GET /partner/webhook/deliveries" => {
            let page = api::page_request(req, |c| DeliveryCursor::decode(c, p))?;
            let deliveries = billing.webhook_deliveries(p, page).await?;
            Ok(api::ok(answers::Page::of(&deliveries, answers::DeliveryBody::from)))
        }
        "POST /partner/webhook/deliveries/{id}/replay" => {
            let id = api::path_param(req, "id")?;
            let m = Mutation::new(idem(), &answers::delivery_replayed);
            api::replied(billing.replay_delivery(p, &id, m).await)
        }
        "GET /partner/balance-alerts" => Ok(api::ok(answers::balance_alerts(&billing.balance_alerts(p).await?))),
        "PUT /partner/balance-alerts" => {
            let body: AlertTerms = api::json_body(req)?;
            let alerts = BalanceAlerts::new(body.workspace, body.wallet)?;
            let m = Mutation::new(idem(), &answers::balance_alerts_set);
            api::replied(billing.put_balance_alerts(p, alerts, m).await)
        }
        "PUT /partner/workspaces/{id}/rebilling" => {
            let w = workspace_id(req)?;
            let rebilling: Rebilling = api::json_body(req)?;
            api::replied(billing.put_rebilling(p, &w, rebilling, Mutation::new(idem(), &answers::rebilling_set)).await)
        }
        "GET /partner/workspaces/{id}/billing-managers" => {
            let w = workspace_id(req)?;
            Ok(api::ok(answers::ManagersBody::new(&w, &billing.billing_managers(p, &w).await?)))
        }
        "POST /partner/workspaces/{id}/billing-managers" | "POST /partner/workspaces/{id}/billing-managers/revoke" => {
            let w = workspace_id(req)?;
            let body: Manager = api::json_body(req)?;
            let (change, respond) = if route.ends_with("/revoke") {
                (BillingAccess::Revoke, &answers::billing_revoked as billing::Respond<'_, _>)
            } else {
                (BillingAccess::Grant, &answers::billing_granted as billing::Respond<'_, _>)
            };
            let m = Mutation::new(idem(), respond);
            api::replied(billing.billing_access(p, &w, &body.sub, change, &caller.sub, m).await)
        }
        "GET /partner/wallet" => {
            let wallet = WalletId::Partner(p.clone());
            let page = api::page_request(req, |c| LedgerCursor::decode(c, &wallet))?;
            Ok(api::ok(answers::PartnerWalletBody::from(&billing.partner_wallet(p, page).await?)))
        }
        "POST /partner/wallet/checkout" => {
            let body: WalletCheckout = api::json_body(req)?;
            let (amount, success_url, cancel_url) = (&body.amount, &body.success_url, &body.cancel_url);
            let m = Mutation::new(idem(), &answers::checkout_created);
            api::replied(billing.create_partner_checkout(p, amount, success_url, cancel_url, m).await)
        }
        "GET /partner/wallet/card" => {
            Ok(api::ok(answers::CardBody::from(billing.partner_wallet_card(p).await?.as_ref())))
        }
        "POST /partner/wallet/card" => {
            let body: SaveCard = api::json_body(req)?;
            let m = Mutation::new(idem(), &answers::card_session_created);
            api::replied(billing.create_partner_card_session(p, &body.success_url, &body.cancel_url, m).await)
        }
        "DELETE /partner/wallet/card" => {
            api::replied(billing.remove_partner_card(p, Mutation::new(idem(), &answers::card_removed)).await)
        }
        "PUT /partner/wallet/auto-refill" => {
            let body: AutoRefill = api::json_body(req)?;
            let currency = billing.meters.currency();
            let money = |param: &str, v: Option<&String>| {
                v.map(|s| Money::parse_major(s, currency).map_err(|e| ApiError::invalid(param, e))).transpose()
            };
            let terms = PartnerRefillTerms {
                enabled: body.enabled,
                threshold: body
                    .threshold
                    .as_deref()
                    .map(|t| Points::parse(t).map_err(|e| ApiError::invalid("threshold", e)))
                    .transpose()?,
                amount: money("amount", body.amount.as_ref())?,
                monthly_cap: money("monthly_cap", body.monthly_cap.as_ref())?,
            };
            api::replied(billing.put_partner_refill(p, &terms, Mutation::new(idem(), &answers::auto_refill_set)).await)
        }
        other => unreachable!("route {other} is in ROUTES but not handled"),
    }
}

/// `PUT /partner/balance-alerts`: the thresholds under which a balance is told, for the
/// partner's workspaces and for its own wallet.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertTerms {
    #[serde(default)]
    workspace: Vec<Points>,
    #[serde(default)]
    wallet: Vec<Points>,
}

/// `PUT /partner/webhook`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointTerms {
    url: String,
    #[serde(default = "on")]
    enabled: bool,
}

fn on() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddonTerms {
    label: String,
    points: Points,
    /// Its price a month in money, for workspaces billed in money (credit billing off).
    #[serde(default)]
    price: Option<Money>,
    enabled: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanTerms {
    label: String,
    limits: Limits,
    monthly_price: Money,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopupOptions {
    options: Vec<TopupOptionTerms>,
}

/// Raw, so that each field's error can name its place in the list (`options[2].amount_minor`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopupOptionTerms {
    id: Option<String>,
    label: String,
    currency: String,
    /// An integer: 1000.5 JPY can't even be said.
    amount_minor: i64,
    points: String,
}

/// Each option checked by [`TopupOption`] (label, currency, amount for the currency and Stripe's
/// minimum, points), the first fault named by its place: `options[2].amount_minor`.
fn topup_drafts(body: TopupOptions) -> Result<Vec<TopupOptionDraft>, ApiError> {
    if body.options.len() > MAX_TOPUP_OPTIONS {
        return Err(ApiError::invalid("options", format!("at most {MAX_TOPUP_OPTIONS} top-up options")));
    }
    body.options
        .into_iter()
        .enumerate()
        .map(|(i, o)| {
            let at = |field: &str| format!("options[{i}].{field}");
            let id =
                o.id.map(|id| TopupOptionId::parse(&id)).transpose().map_err(|e| ApiError::invalid(&at("id"), e))?;
            let option = TopupOption::parse(&o.label, &o.currency, o.amount_minor, &o.points)
                .map_err(|e| ApiError::invalid(&at(e.param()), e))?;
            Ok(TopupOptionDraft { id, option })
        })
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreditRateBody {
    currency: String,
    /// A decimal string ("0.05"), never a JSON number.
    price_per_point: String,
    /// Points strings ("100"); absent or `null`: no bound, so a partner can send back what
    /// `GET /partner/topup-options` shows.
    min_points: Option<String>,
    max_points: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateWorkspace {
    /// Refused with its own answer, whatever its value: an id is the API's to give.
    #[serde(default, deserialize_with = "present")]
    id: bool,
    name: String,
    plan: String,
    cycle_anchor_day: Option<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangePlan {
    plan: String,
}

fn plan_id(req: &Request) -> Result<PlanId, ApiError> {
    PlanId::parse(&api::path_param(req, "id")?).map_err(|_| ApiError::not_found("plan"))
}

/// A user a partner grants or revokes billing access: the `sub` of its tokens.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manager {
    sub: String,
}

fn workspace_id(req: &Request) -> Result<WorkspaceId, ApiError> {
    WorkspaceId::parse(&api::path_param(req, "id")?).map_err(|_| ApiError::not_found("workspace"))
}

async fn list_workspaces<T: Table>(billing: &Billing<T>, p: &PartnerId, req: &Request) -> api::Answer {
    let page = api::page_request(req, |c| WorkspaceCursor::decode(c, p))?;
    let status = match api::query_param(req, "status") {
        Some(s) => Some(ListedStatus::parse(&s).ok_or_else(|| ApiError::invalid("status", "active or paused"))?),
        None => None,
    };
    let after = page.after.as_ref().map(WorkspaceCursor::workspace);
    let listed = billing.list_workspaces(p, after, page.limit, status).await?;
    let next = listed.next.map(|w| WorkspaceCursor::after(w).encode(p));
    Ok(api::ok(answers::Page::new(listed.items.iter().map(answers::ListedBody::from).collect(), next)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn get_is_not_a_mutation() {
        assert!(!api::is_mutation(&lambda_http::http::Method::GET));
    }
}

/// `POST /partner/wallet/checkout`: an amount in the wallet's currency (a string of major
/// units, "100.00") and where Checkout sends the partner back to.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WalletCheckout {
    amount: String,
    success_url: String,
    cancel_url: String,
}

/// `POST /partner/wallet/card`: where the setup page sends the partner back to.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SaveCard {
    success_url: String,
    cancel_url: String,
}

/// `PUT /partner/wallet/auto-refill`: amounts as strings of major units of the wallet's currency.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AutoRefill {
    enabled: bool,
    #[serde(default)]
    threshold: Option<String>,
    #[serde(default)]
    amount: Option<String>,
    #[serde(default)]
    monthly_cap: Option<String>,
}

/// `POST /partner/stripe/connect`: the `code` Stripe's OAuth redirect handed the partner.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Connect {
    code: String,
}

/// True for a field that is there, whatever it holds (`null` included).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d)?;
    Ok(true)
}
