//! What an add-on would cost before the workspace buys it: the points now (prorated to the
//! cycle's end, as [`Billing::add_addon`] will charge them), the points each month after, the
//! balance left, and whether the purchase resumes a paused workspace. It changes nothing.
//!
//! The shape of an operation, without its write: the keys (the workspace's wallet, its
//! partner's profile, the add-on's terms and the workspace's plan), one read, a decision with
//! the rules of `domain`.

use domain::{
    AddonCode, AddonStatus, Balance, Cycle, Limits, PointsDelta, Workspace, WorkspaceAddon, WorkspaceStatus, evaluate,
    prorate, room_for_addon,
};
use store::{Table, keys, wallet_state};
use time::Date;

use super::{Billing, OpError, load};

/// What buying `quantity` of an add-on would do, today.
#[derive(Debug, Clone, PartialEq)]
pub struct AddonQuote {
    pub code: AddonCode,
    pub label: String,
    pub quantity: u32,
    pub unit_points: domain::Points,
    /// Debited at once: the rest of this cycle.
    pub now: domain::Points,
    /// Renewed at each cycle after this one.
    pub per_month: domain::Points,
    pub days_remaining: u32,
    pub days_in_cycle: u32,
    pub cycle: Cycle,
    pub balance: Balance,
    /// The balance once `now` is debited; `None` when the balance is short of it.
    pub balance_after: Option<Balance>,
    /// The workspace's limits and status once the add-on counts.
    pub limits_after: Limits,
    pub status_after: WorkspaceStatus,
}

impl<T: Table> Billing<T> {
    /// The price of `quantity` of add-on `code` for workspace `ws` (read by the caller, which
    /// checked it is theirs), as the purchase would charge it now. Refused as the purchase
    /// would be: credit billing off (403), an add-on not offered or one too many (400).
    pub async fn quote_addon(&self, ws: &Workspace, code: AddonCode, quantity: u32) -> Result<AddonQuote, OpError> {
        let p = &ws.partner;
        let wallet = domain::WalletId::Workspace(ws.id.clone());
        let needed = [
            keys::wallet(&wallet),
            keys::partner_profile(p),
            keys::partner_addon(p, code),
            keys::partner_plan(p, ws.plan),
        ];
        let read = self.store.read(&needed).await?;
        let profile = load::partner_profile(&read, p)?;
        if !profile.settings.credit_billing {
            return Err(OpError::Forbidden("add-on credit billing is off for this workspace's partner"));
        }
        let offer = load::partner_addon(&read, p, code)?;
        if !offer.enabled {
            return Err(OpError::invalid("addon", "this add-on is not offered"));
        }
        let plan = load::plan(&read, p, ws.plan)?;
        let balance = wallet_state(read.get(&keys::wallet(&wallet)))?.balance;
        let today = self.clock.now().date();
        decide(ws, &plan, offer, quantity, balance, today)
    }
}

/// The quote, with no I/O: the same proration and evaluation the purchase applies.
fn decide(
    ws: &Workspace,
    plan: &domain::Plan,
    offer: domain::PartnerAddon,
    quantity: u32,
    balance: Balance,
    today: Date,
) -> Result<AddonQuote, OpError> {
    let cycle = Cycle::containing(ws.anchor, today).map_err(|e| OpError::Internal(e.to_string()))?;
    let prorated = prorate(offer.points, quantity, &cycle, today).map_err(|e| OpError::invalid("quantity", e))?;
    room_for_addon(&ws.addons).map_err(OpError::AddonLimit)?;
    let mut addons = ws.addons.clone();
    addons.push(WorkspaceAddon {
        id: domain::AddonId::generate(),
        code: offer.code,
        quantity,
        unit_points: offer.points,
        status: AddonStatus::Active,
        period_end: cycle.end(),
        created_at: today.midnight().assume_utc(),
        billed: None,
    });
    let (limits_after, status_after) =
        evaluate(plan, &addons, &ws.usage, ws.unpaid()).map_err(|e| OpError::invalid("quantity", e))?;
    let balance_after = balance.apply(PointsDelta::debit(prorated.amount())).filter(|b| !b.is_negative());
    Ok(AddonQuote {
        code: offer.code,
        label: offer.label,
        quantity,
        unit_points: offer.points,
        now: prorated.amount(),
        per_month: prorated.full_price(),
        days_remaining: prorated.days_remaining(),
        days_in_cycle: prorated.days_in_cycle(),
        cycle,
        balance,
        balance_after,
        limits_after,
        status_after,
    })
}
