//! What happens to a workspace's add-ons when its cycle ends (seeds 000 and 001): the pure
//! decision, for one workspace, that the scheduled renewal then writes in one transaction.
//!
//! - An active add-on whose period ends with the cycle renews for the next cycle at the
//!   partner's price *now* (a price change takes effect at the next renewal), whole month, no
//!   proration.
//! - An add-on cancelled by the workspace (`cancelling`) ends instead.
//! - **All or nothing**: the points must cover every renewing add-on, or none of them renews.
//!   Renewing some would pick winners the customer never chose (which bot keeps running?), and a
//!   partial debit would leave the workspace half-billed for a cycle; so a shortfall is one fact
//!   about the workspace, covered by auto top-up, kept through the grace days, then lapsing every
//!   add-on it concerns together.

use serde::{Deserialize, Serialize};
use time::Date;

use super::{AddonCode, AddonId, AddonStatus, Balance, Cycle, CycleError, Points, WorkspaceAddon};

/// Most add-ons one renewal carries: each is one action of the renewal's single transaction,
/// beside the wallet, the ledger entry, the idempotency record and the workspace (DynamoDB
/// allows 100).
pub const MAX_RENEWAL_ADDONS: usize = 90;

/// One add-on renewed: its price now, times its quantity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewalLine {
    pub addon_id: AddonId,
    pub addon: AddonCode,
    pub quantity: u32,
    pub unit_points: Points,
    pub points: Points,
}

/// The renewal of one workspace for the cycle after `ended`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewalPlan {
    pub ended: Cycle,
    pub next: Cycle,
    /// Add-ons that renew, with their price for `next`.
    pub lines: Vec<RenewalLine>,
    /// Cancelled add-ons whose period ends with `ended`: they end now.
    pub ending: Vec<AddonId>,
    /// The sum of the lines.
    pub total: Points,
}

impl RenewalPlan {
    /// What the balance lacks to pay `total` (zero when it suffices).
    pub fn shortfall(&self, balance: Balance) -> Points {
        // Both are within +-POINTS_MAX: their difference fits a Decimal.
        let lacking =
            self.total.as_decimal().checked_sub(balance.as_decimal()).expect("two amounts within +-POINTS_MAX");
        if lacking > rust_decimal::Decimal::ZERO {
            Points::from_decimal(lacking).expect("a shortfall is at most the total, a valid amount")
        } else {
            Points::ZERO
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenewalError {
    #[error(transparent)]
    Cycle(#[from] CycleError),
    #[error("more than {MAX_RENEWAL_ADDONS} add-ons renew at once")]
    TooManyAddons,
    #[error("the renewal total is out of range")]
    OutOfRange,
}

/// The renewal due when the cycle that ends the day before `renews_on` is over. `price` is the
/// partner's current price per unit of an add-on (`None` if the partner no longer sells it: it
/// renews at its last price, since the customer still holds it and stopping a sold add-on is
/// the partner's explicit removal, not a price edit).
pub fn plan_renewal(
    ended: Cycle,
    addons: &[WorkspaceAddon],
    price: impl Fn(AddonCode) -> Option<Points>,
) -> Result<RenewalPlan, RenewalError> {
    let next = ended.next()?;
    let due = |a: &&WorkspaceAddon| a.period_end <= ended.end();
    let mut lines = Vec::new();
    let mut ending = Vec::new();
    let mut total = Points::ZERO;
    for a in addons.iter().filter(due) {
        match a.status {
            AddonStatus::Active => {
                let unit_points = price(a.code).unwrap_or(a.unit_points);
                let points = unit_points.checked_mul(a.quantity).ok_or(RenewalError::OutOfRange)?;
                total = total.checked_add(points).ok_or(RenewalError::OutOfRange)?;
                lines.push(RenewalLine {
                    addon_id: a.id.clone(),
                    addon: a.code,
                    quantity: a.quantity,
                    unit_points,
                    points,
                });
            }
            AddonStatus::Cancelling => ending.push(a.id.clone()),
            AddonStatus::Removed | AddonStatus::Lapsed => {}
        }
    }
    if lines.len().saturating_add(ending.len()) > MAX_RENEWAL_ADDONS {
        return Err(RenewalError::TooManyAddons);
    }
    Ok(RenewalPlan { ended, next, lines, ending, total })
}

/// The day a renewal that could not be paid lapses: `grace_days` after it was due (0: at once).
pub fn lapses_on(renews_on: Date, grace_days: u32) -> Date {
    renews_on.saturating_add(time::Duration::days(i64::from(grace_days)))
}

/// The first day after `cycle`: when its renewal is due.
pub fn renews_on(cycle: &Cycle) -> Result<Date, CycleError> {
    cycle.end().next_day().ok_or(CycleError::OutOfRange)
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;
    use crate::domain::AnchorDay;

    fn addon(id: &str, code: AddonCode, quantity: u32, unit: &str, status: AddonStatus, end: Date) -> WorkspaceAddon {
        WorkspaceAddon {
            id: AddonId::parse(id).unwrap(),
            code,
            quantity,
            unit_points: Points::parse(unit).unwrap(),
            status,
            period_end: end,
            created_at: datetime!(2026-04-15 10:00 UTC),
        }
    }

    #[test]
    fn renews_active_at_todays_price_and_ends_cancelled() {
        let april = Cycle::containing(AnchorDay::new(1).unwrap(), date!(2026 - 04 - 15)).unwrap();
        let addons = [
            addon("ad_bot", AddonCode::ExtraBot, 2, "10", AddonStatus::Active, date!(2026 - 04 - 30)),
            addon("ad_member", AddonCode::ExtraMember, 1, "10", AddonStatus::Cancelling, date!(2026 - 04 - 30)),
            addon("ad_gone", AddonCode::ExtraBot, 1, "10", AddonStatus::Removed, date!(2026 - 04 - 30)),
            // Bought after the renewal fell due (during grace): already paid into May.
            addon("ad_may", AddonCode::ExtraBot, 1, "10", AddonStatus::Active, date!(2026 - 05 - 31)),
        ];
        // The partner raised the bot to 12 points since the purchase.
        let price = |c: AddonCode| (c == AddonCode::ExtraBot).then(|| Points::parse("12").unwrap());
        let plan = plan_renewal(april, &addons, price).unwrap();
        assert_eq!((plan.next.start(), plan.next.end()), (date!(2026 - 05 - 01), date!(2026 - 05 - 31)));
        assert_eq!(plan.lines.len(), 1);
        assert_eq!(
            (plan.lines[0].unit_points.to_string(), plan.lines[0].points.to_string()),
            ("12.00".into(), "24.00".into())
        );
        assert_eq!(plan.ending, [AddonId::parse("ad_member").unwrap()]);
        assert_eq!(plan.total.to_string(), "24.00");
        assert_eq!(plan.shortfall(Balance::parse("20").unwrap()).to_string(), "4.00");
        assert_eq!(plan.shortfall(Balance::parse("24").unwrap()), Points::ZERO);
        assert_eq!(plan.shortfall(Balance::parse("-1").unwrap()).to_string(), "25.00");
    }

    #[test]
    fn grace_and_due_dates() {
        assert_eq!(lapses_on(date!(2026 - 05 - 01), 0), date!(2026 - 05 - 01));
        assert_eq!(lapses_on(date!(2026 - 05 - 30), 3), date!(2026 - 06 - 02));
        let jan31 = Cycle::containing(AnchorDay::new(31).unwrap(), date!(2026 - 02 - 10)).unwrap();
        assert_eq!(renews_on(&jan31).unwrap(), date!(2026 - 02 - 28));
    }
}
