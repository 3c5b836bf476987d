//! The JSON bodies the API answers with, built in one place. What a workspace is shown never
//! includes a cost price: only labels and points.

use serde_json::{Value, json};

use domain::{
    Balance, CreditRate, CreditRateTerms, Cycle, LedgerEntry, Limits, PartnerAddon, PartnerSettings, Plan, Workspace,
    WorkspaceAddon, WorkspaceStatus,
};
use time::OffsetDateTime;

use store::records::{CheckoutRecord, StripeConnection, format_date, rfc3339};

use domain::PartnerTopupOption;

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("API types serialize to JSON")
}

/// An add-on as its partner manages it: its offer, with the platform's cost price.
pub fn partner_addon_view(a: &PartnerAddon) -> Value {
    let mut view = addon_offer_view(a);
    view["cost_price"] = to_value(&a.code.cost_price());
    view["enabled"] = json!(a.enabled);
    view
}

/// An add-on on offer, as a workspace sees it: label and points only.
pub fn addon_offer_view(a: &PartnerAddon) -> Value {
    let (limit, amount) = a.code.effect();
    json!({
        "code": a.code.as_str(),
        "label": a.label,
        "effect": { "limit": limit.as_str(), "amount": amount },
        "points": a.points.to_string(),
    })
}

/// An add-on a workspace holds.
pub fn owned_addon_view(a: &WorkspaceAddon, label: &str) -> Value {
    json!({
        "id": a.id.as_str(),
        "addon": a.code.as_str(),
        "label": label,
        "quantity": a.quantity,
        "unit_points": a.unit_points.to_string(),
        "status": a.status.as_str(),
        "period_end": format_date(a.period_end),
    })
}

/// A top-up option as its partner manages it: exactly the fields `PUT /partner/topup-options`
/// takes, so a partner can send back what it read.
pub fn partner_topup_view(o: &PartnerTopupOption) -> Value {
    let amount = o.option.amount();
    json!({
        "id": o.id.as_str(),
        "label": o.option.label(),
        "currency": amount.currency(),
        "amount_minor": amount.amount_minor(),
        "points": o.option.points().to_string(),
    })
}

/// A top-up option on offer, as a workspace sees it: with the amount in major units for display
/// ("10.00" usd, "1000" jpy, "5.120" kwd).
pub fn topup_offer_view(o: &PartnerTopupOption) -> Value {
    let mut view = partner_topup_view(o);
    view["amount_major"] = json!(o.option.amount().format_major());
    view
}

/// `{"currency": "usd", "price_per_point": "0.05"}`: the platform's wholesale cost per point.
pub fn credit_rate_view(r: &CreditRate) -> Value {
    to_value(r)
}

/// A partner's credit rate with its bounds, to the partner and its workspaces alike, exactly
/// the fields `PUT /partner/credit-rate` takes (a bound not set is `null`):
/// `{"currency": "usd", "price_per_point": "0.05", "min_points": "100.00", "max_points": null}`.
pub fn credit_rate_terms_view(t: &CreditRateTerms) -> Value {
    to_value(t)
}

pub fn plan_view(p: &Plan) -> Value {
    json!({
        "id": p.id.as_str(),
        "label": p.label,
        "limits": to_value(&p.limits),
        "monthly_price": to_value(&p.monthly_price),
    })
}

pub fn settings_view(s: &PartnerSettings) -> Value {
    to_value(s)
}

pub fn status_view(s: &WorkspaceStatus) -> Value {
    match s {
        WorkspaceStatus::Active => json!({ "status": "active", "exceeded": [] }),
        WorkspaceStatus::Paused { exceeded } => json!({ "status": "paused", "exceeded": to_value(exceeded) }),
    }
}

pub fn cycle_view(c: &Cycle) -> Value {
    json!({ "start": format_date(c.start()), "end": format_date(c.end()) })
}

pub fn entry_view(e: &LedgerEntry) -> Value {
    let (kind, detail) = match to_value(&e.kind) {
        Value::Object(mut m) => {
            let kind = m.remove("type").unwrap_or(Value::Null);
            (kind, Value::Object(m))
        }
        other => (Value::Null, other),
    };
    json!({
        "id": e.id.to_string(),
        "seq": e.id.seq,
        "amount": e.amount.to_string(),
        "balance_after": e.balance_after.to_string(),
        "kind": kind,
        "detail": detail,
        "actor": to_value(&e.actor),
        "created_at": store::records::rfc3339(e.created_at),
    })
}

/// A workspace with everything its owner needs at a glance.
pub struct WorkspaceDetails<'a> {
    pub workspace: &'a Workspace,
    pub cycle: &'a Cycle,
    pub limits: &'a Limits,
    pub balance: Balance,
    /// Add-ons that still count, with their labels.
    pub addons: Vec<(&'a WorkspaceAddon, String)>,
    /// [`super::auto_topup_view`].
    pub auto_topup: Value,
}

pub fn workspace_view(d: &WorkspaceDetails<'_>) -> Value {
    let ws = d.workspace;
    let mut v = json!({
        "id": ws.id.as_str(),
        "partner_id": ws.partner.as_str(),
        "name": ws.name,
        "plan": ws.plan.as_str(),
        "cycle": cycle_view(d.cycle),
        "renews_on": format_date(ws.renews_on),
        "limits": to_value(d.limits),
        "usage": to_value(&ws.usage),
        "balance": d.balance.to_string(),
        "addons": d.addons.iter().map(|(a, label)| owned_addon_view(a, label)).collect::<Vec<_>>(),
        "auto_topup": d.auto_topup,
    });
    if let (Value::Object(m), Value::Object(s)) = (&mut v, status_view(&ws.status)) {
        m.extend(s);
    }
    v
}

pub fn stripe_connection_view(c: &StripeConnection) -> Value {
    json!({
        "account": c.account.as_str(),
        "livemode": c.livemode,
        "connected_at": rfc3339(c.connected_at),
        "deauthorized_at": c.deauthorized_at.map(rfc3339),
    })
}

/// A checkout; `url` while the customer can still pay on it.
pub fn checkout_view(c: &CheckoutRecord, url: Option<&str>, expires_at: OffsetDateTime) -> Value {
    json!({
        "id": c.id.as_str(),
        "url": url,
        "status": c.status.as_str(),
        "points": c.points.to_string(),
        "currency": c.amount.currency(),
        "amount_minor": c.amount.amount_minor(),
        "amount_major": c.amount.format_major(),
        "topup_option_id": c.topup_option_id.as_ref().map(|o| o.as_str()),
        "expires_at": rfc3339(expires_at),
    })
}
