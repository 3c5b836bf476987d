//! What happens to a workspace's add-ons when its cycle ends: the pure
//! decision, for one workspace, that the scheduled renewal then writes in one transaction.
//!
//! - An active add-on whose period ends with the cycle renews for the next cycle at the
//!   partner's price *now* (a price change takes effect at the next renewal), whole month, no
//!   proration.
//! - An add-on cancelled by the workspace (`cancelling`) ends instead.
//! - An add-on billed in money ([`WorkspaceAddon::billed`]) is on its plan's Stripe bill: it is
//!   none of this renewal's business.
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
/// allows 100). It is also the most add-ons a workspace may hold at once ([`room_for_addon`]):
/// every add-on it holds may fall due at the same renewal.
pub const MAX_RENEWAL_ADDONS: usize = 90;

/// A purchase refused because the workspace holds as many add-ons as one renewal carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "this workspace already holds {max} add-ons, the most a workspace may hold at once; buy a larger quantity of \
     one it holds instead, or wait until a cancelled one ends"
)]
pub struct AddonLimitReached {
    pub max: usize,
}

/// Whether a workspace holding `addons` may take one more. Cancelled add-ons count until their
/// period ends, since the renewal that ends them writes them too. A quantity is one add-on
/// whatever its size: a renewal writes one item for it.
pub fn room_for_addon(addons: &[WorkspaceAddon]) -> Result<(), AddonLimitReached> {
    let held = addons.iter().filter(|a| a.status.counts_toward_limits()).count();
    if held < MAX_RENEWAL_ADDONS { Ok(()) } else { Err(AddonLimitReached { max: MAX_RENEWAL_ADDONS }) }
}

/// The add-ons due at the end of `ended` that one renewal cannot carry: a workspace that held
/// more than [`MAX_RENEWAL_ADDONS`] before purchases were bounded. They give way in this order:
/// cancelled ones first (they end at this renewal anyway), then active ones, newest first (the
/// workspace keeps what it has held longest). Empty when all fit.
pub fn renewal_overflow(ended: &Cycle, addons: &[WorkspaceAddon]) -> Vec<WorkspaceAddon> {
    let mut due: Vec<&WorkspaceAddon> = addons
        .iter()
        .filter(|a| a.billed.is_none() && a.period_end <= ended.end() && a.status.counts_toward_limits())
        .collect();
    let Some(excess) = due.len().checked_sub(MAX_RENEWAL_ADDONS).filter(|n| *n > 0) else {
        return Vec::new();
    };
    due.sort_by(|a, b| {
        let cancelled = |x: &WorkspaceAddon| x.status != AddonStatus::Cancelling;
        (cancelled(a), std::cmp::Reverse((a.created_at, &a.id)))
            .cmp(&(cancelled(b), std::cmp::Reverse((b.created_at, &b.id))))
    });
    due.into_iter().take(excess).cloned().collect()
}

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
    // An add-on billed in money renews on the plan's bill, never in points.
    let due = |a: &&WorkspaceAddon| a.billed.is_none() && a.period_end <= ended.end();
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
    use crate::AnchorDay;

    fn addon(id: &str, code: AddonCode, quantity: u32, unit: &str, status: AddonStatus, end: Date) -> WorkspaceAddon {
        WorkspaceAddon {
            id: AddonId::parse(id).unwrap(),
            code,
            quantity,
            unit_points: Points::parse(unit).unwrap(),
            status,
            period_end: end,
            created_at: datetime!(2026-04-15 10:00 UTC),
            billed: None,
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

    fn many(n: usize, status: AddonStatus, end: Date) -> Vec<WorkspaceAddon> {
        (0..n)
            .map(|i| WorkspaceAddon {
                id: AddonId::parse(&format!("ad_{i:04}")).unwrap(),
                code: AddonCode::ExtraMember,
                quantity: 1,
                unit_points: Points::parse("10").unwrap(),
                status,
                period_end: end,
                created_at: datetime!(2026-04-15 10:00 UTC) + time::Duration::minutes(i as i64),
                billed: None,
            })
            .collect()
    }

    #[test]
    fn a_workspace_holds_as_many_addons_as_one_renewal_carries() {
        let april_end = date!(2026 - 04 - 30);
        let mut held = many(MAX_RENEWAL_ADDONS - 1, AddonStatus::Active, april_end);
        // Ended ones take no room; a cancelled one does until it ends.
        held.extend(many(5, AddonStatus::Lapsed, april_end));
        held.extend(many(3, AddonStatus::Removed, april_end));
        assert_eq!(room_for_addon(&held), Ok(()));
        held.extend(many(1, AddonStatus::Cancelling, april_end));
        assert_eq!(room_for_addon(&held), Err(AddonLimitReached { max: 90 }));
        assert!(AddonLimitReached { max: 90 }.to_string().contains("90 add-ons"));
    }

    #[test]
    fn the_overflow_is_cancelled_ones_then_the_newest() {
        let april = Cycle::containing(AnchorDay::new(1).unwrap(), date!(2026 - 04 - 15)).unwrap();
        let end = april.end();
        let mut addons = many(MAX_RENEWAL_ADDONS, AddonStatus::Active, end);
        assert_eq!(renewal_overflow(&april, &addons), [], "exactly as many as fit");
        // Not due at this renewal (bought during grace, paid into May), or ended: not counted.
        addons.push(addon("ad_may", AddonCode::ExtraBot, 1, "10", AddonStatus::Active, date!(2026 - 05 - 31)));
        addons.push(addon("ad_gone", AddonCode::ExtraBot, 1, "10", AddonStatus::Lapsed, end));
        assert_eq!(renewal_overflow(&april, &addons), []);
        // 3 more due: the cancelled one gives way first, then the two newest active ones.
        addons.push(addon("ad_cancelled", AddonCode::ExtraBot, 1, "10", AddonStatus::Cancelling, end));
        let mut newest = many(MAX_RENEWAL_ADDONS + 2, AddonStatus::Active, end).split_off(MAX_RENEWAL_ADDONS);
        newest.iter_mut().for_each(|a| a.id = AddonId::parse(&format!("ad_new{}", a.id)).unwrap());
        addons.extend(newest);
        let ids: Vec<String> = renewal_overflow(&april, &addons).iter().map(|a| a.id.to_string()).collect();
        assert_eq!(ids, ["ad_cancelled", "ad_newad_0091", "ad_newad_0090"]);
        // What is left fits one renewal.
        let left: Vec<_> = addons.iter().filter(|a| !ids.contains(&a.id.to_string())).cloned().collect();
        let plan = plan_renewal(april, &left, |_| None).unwrap();
        assert_eq!(plan.lines.len() + plan.ending.len(), MAX_RENEWAL_ADDONS);
        assert_eq!(plan_renewal(april, &addons, |_| None), Err(RenewalError::TooManyAddons));
    }

    #[test]
    fn grace_and_due_dates() {
        assert_eq!(lapses_on(date!(2026 - 05 - 01), 0), date!(2026 - 05 - 01));
        assert_eq!(lapses_on(date!(2026 - 05 - 30), 3), date!(2026 - 06 - 02));
        let jan31 = Cycle::containing(AnchorDay::new(31).unwrap(), date!(2026 - 02 - 10)).unwrap();
        assert_eq!(renews_on(&jan31).unwrap(), date!(2026 - 02 - 28));
    }
}
