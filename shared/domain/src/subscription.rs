//! Plans billed in money: a workspace's subscription on its partner's Stripe account, what a
//! change of plan or an add-on bought mid-cycle costs now, and when an unpaid plan pauses.
//!
//! Stripe bills the plan and the add-ons on it in advance, a cycle at a time. What the product
//! charges for the rest of a cycle is decided here, by the same rule as points
//! ([proration](crate::proration)): `price x days_remaining / days_in_cycle`, rounded once, half
//! up, to the currency's smallest amount. Stripe is never asked to prorate.

use rust_decimal::{Decimal, RoundingStrategy};
use time::Date;

use super::stripe_ids::{SubscriptionId, SubscriptionItemId};
use super::{AnchorDay, Cycle, Money, MoneyError, Plan, PlanId, ProrationError};

/// What money a part of a cycle costs, with the facts that explain it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProratedMoney {
    pub full_price: Money,
    pub amount: Money,
    pub days_remaining: u32,
    pub days_in_cycle: u32,
}

/// `unit_price x quantity x days_remaining / days_in_cycle`, where `days_remaining` counts the
/// whole days after `date` up to and including the cycle's last day; rounded once, half up, to
/// the currency's smallest chargeable step (0.01 USD, 1 JPY, 0.010 KWD).
///
/// The published vector: a member at 10.00 a month bought with 15 of 30 days left costs 5.00; on
/// a 31-day cycle, bought on the 15th, 10.00 x 16/31 = 5.1613 -> 5.16.
pub fn prorate_money(
    unit_price: Money,
    quantity: u32,
    cycle: &Cycle,
    date: Date,
) -> Result<ProratedMoney, ProrationError> {
    if quantity == 0 {
        return Err(ProrationError::ZeroQuantity);
    }
    let days_remaining = cycle.days_remaining_after(date).map_err(|_| ProrationError::PurchaseOutsideCycle {
        date,
        start: cycle.start(),
        end: cycle.end(),
    })?;
    let days_in_cycle = cycle.days_in_cycle();
    let full_price = unit_price.checked_mul(quantity).map_err(|_| ProrationError::TooLarge)?;
    let amount = share_of(full_price, days_remaining, days_in_cycle)?;
    Ok(ProratedMoney { full_price, amount, days_remaining, days_in_cycle })
}

/// `full x days / of`, half up to the currency's step.
fn share_of(full: Money, days: u32, of: u32) -> Result<Money, ProrationError> {
    let currency = full.currency();
    let step = Decimal::from(currency.step_minor());
    let exact = Decimal::from(full.amount_minor())
        .checked_mul(Decimal::from(days))
        .and_then(|x| x.checked_div(Decimal::from(of)))
        .and_then(|x| x.checked_div(step))
        .ok_or(ProrationError::TooLarge)?;
    let steps = exact.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero);
    let minor = steps.checked_mul(step).and_then(|x| i64::try_from(x).ok()).ok_or(ProrationError::TooLarge)?;
    Money::from_minor(minor, currency).map_err(|_| ProrationError::TooLarge)
}

/// Whether the plan's money has come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanPayment {
    /// The current cycle is paid.
    Paid,
    /// The cycle's invoice failed on `since`; the workspace runs on until its partner's grace
    /// days are over.
    PastDue { since: Date },
    /// Still unpaid after the grace days: the workspace is paused until the invoice is paid.
    Unpaid { since: Date },
}

impl PlanPayment {
    pub fn as_str(&self) -> &'static str {
        match self {
            PlanPayment::Paid => "paid",
            PlanPayment::PastDue { .. } => "past_due",
            PlanPayment::Unpaid { .. } => "unpaid",
        }
    }

    /// The day an unpaid cycle pauses the workspace: `grace_days` after it failed (0: at once).
    pub fn pauses_on(&self, grace_days: u32) -> Option<Date> {
        match self {
            PlanPayment::PastDue { since } => since.checked_add(time::Duration::days(i64::from(grace_days))),
            _ => None,
        }
    }
}

/// A workspace's plan billed in money: its subscription on the partner's connected account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanSubscription {
    pub id: SubscriptionId,
    /// The subscription's item that bills the plan.
    pub plan_item: SubscriptionItemId,
    /// What the plan is billed a month (the partner's price when it was subscribed or changed).
    pub plan_price: Money,
    /// The day of the month its cycles start on (Stripe's billing cycle anchor).
    pub anchor: AnchorDay,
    /// The cycle paid for (Stripe's current period, as dates: its last day included).
    pub cycle_start: Date,
    pub cycle_end: Date,
    pub payment: PlanPayment,
    /// Ends when the cycle does (cancelled by the customer or the partner).
    pub cancel_at_cycle_end: bool,
    /// A cheaper plan chosen during the cycle: billed from the next invoice, its limits from the
    /// next cycle.
    pub next_plan: Option<PlanId>,
}

impl PlanSubscription {
    /// The cycle that contains `date` (today's: Stripe's current period, as dates).
    pub fn cycle_on(&self, date: Date) -> Result<Cycle, super::CycleError> {
        Cycle::containing(self.anchor, date)
    }
}

/// What a customer's change of plan does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanChange {
    /// Dearer: the new plan's limits now, and the difference for the rest of the cycle charged
    /// now (`charge`: may be below Stripe's minimum, even zero on the cycle's last day).
    Upgrade { charge: ProratedMoney },
    /// Cheaper (or the same price): billed from the next invoice; its limits from the next cycle,
    /// which starts on `from`.
    Downgrade { from: Date },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanChangeError {
    #[error("the workspace is already on this plan")]
    SamePlan,
    #[error("this plan is priced in {found}; the subscription is billed in {expected}")]
    Currency { expected: String, found: String },
    #[error(transparent)]
    Proration(#[from] ProrationError),
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// A customer moving from the plan it pays `current` for to `to`, on `date` during `cycle`.
pub fn plan_change(
    current: PlanId,
    current_price: Money,
    to: &Plan,
    cycle: &Cycle,
    date: Date,
) -> Result<PlanChange, PlanChangeError> {
    if to.id == current {
        return Err(PlanChangeError::SamePlan);
    }
    let (old, new) = (current_price, to.monthly_price);
    if old.currency() != new.currency() {
        return Err(PlanChangeError::Currency {
            expected: old.currency().code().to_owned(),
            found: new.currency().code().to_owned(),
        });
    }
    if new.amount_minor() <= old.amount_minor() {
        let from = cycle.end().next_day().ok_or(ProrationError::TooLarge)?;
        return Ok(PlanChange::Downgrade { from });
    }
    let difference = Money::from_minor(new.amount_minor().saturating_sub(old.amount_minor()), new.currency())?;
    Ok(PlanChange::Upgrade { charge: prorate_money(difference, 1, cycle, date)? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AnchorDay, Currency};
    use time::macros::date;

    fn usd(minor: i64) -> Money {
        Money::from_minor(minor, Currency::USD).unwrap()
    }

    fn cycle(anchor: u8, d: Date) -> Cycle {
        Cycle::containing(AnchorDay::new(anchor).unwrap(), d).unwrap()
    }

    #[test]
    fn the_published_vector_in_money() {
        // 49.00 a month, an extra member at 10.00 bought with 15 of 30 days left: 5.00 now.
        let april = cycle(1, date!(2027 - 04 - 01));
        let p = prorate_money(usd(1000), 1, &april, date!(2027 - 04 - 15)).unwrap();
        assert_eq!((p.amount, p.days_remaining, p.days_in_cycle, p.full_price), (usd(500), 15, 30, usd(1000)));
        assert_eq!(usd(4900).checked_add(p.amount).unwrap(), usd(5400));
        // On a 31-day cycle: 10.00 x 16/31 = 5.1613 -> 5.16.
        let may = cycle(1, date!(2027 - 05 - 01));
        assert_eq!(prorate_money(usd(1000), 1, &may, date!(2027 - 05 - 15)).unwrap().amount, usd(516));
        // The last day costs nothing; quantity multiplies before the one rounding.
        assert_eq!(prorate_money(usd(1000), 1, &may, date!(2027 - 05 - 31)).unwrap().amount, usd(0));
        assert_eq!(
            prorate_money(usd(101), 3, &cycle(1, date!(2027 - 06 - 01)), date!(2027 - 06 - 15)).unwrap().amount,
            usd(152)
        );
    }

    #[test]
    fn rounds_to_the_currency_step() {
        let may = cycle(1, date!(2027 - 05 - 01));
        // 1000 JPY x 16/31 = 516.13 -> 516.
        let jpy = Money::from_minor(1000, Currency::parse("jpy").unwrap()).unwrap();
        assert_eq!(prorate_money(jpy, 1, &may, date!(2027 - 05 - 15)).unwrap().amount.amount_minor(), 516);
        // 10.000 KWD x 16/31 = 5.16129 -> 5.160 (KWD's last digit is 0).
        let kwd = Money::from_minor(10_000, Currency::parse("kwd").unwrap()).unwrap();
        assert_eq!(prorate_money(kwd, 1, &may, date!(2027 - 05 - 15)).unwrap().amount.amount_minor(), 5_160);
        // Half up: 0.01 x 15/30 = 0.005 -> 0.01.
        assert_eq!(
            prorate_money(usd(1), 1, &cycle(1, date!(2027 - 04 - 01)), date!(2027 - 04 - 15)).unwrap().amount,
            usd(1)
        );
    }

    #[test]
    fn outside_the_cycle_is_an_error() {
        let april = cycle(1, date!(2027 - 04 - 01));
        assert!(matches!(
            prorate_money(usd(1000), 1, &april, date!(2027 - 05 - 01)),
            Err(ProrationError::PurchaseOutsideCycle { .. })
        ));
        assert_eq!(prorate_money(usd(1000), 0, &april, date!(2027 - 04 - 02)), Err(ProrationError::ZeroQuantity));
    }

    #[test]
    fn upgrades_charge_the_difference_and_downgrades_wait() {
        let april = cycle(1, date!(2027 - 04 - 01));
        let mut growth = Plan::default_for(PlanId::Growth);
        growth.monthly_price = usd(9900);
        // 49.00 -> 99.00 with 15 of 30 days left: 50.00 x 15/30 = 25.00.
        let up = plan_change(PlanId::Starter, usd(4900), &growth, &april, date!(2027 - 04 - 15)).unwrap();
        let PlanChange::Upgrade { charge } = up else { panic!("an upgrade: {up:?}") };
        assert_eq!(charge.amount, usd(2500));
        let mut starter = Plan::default_for(PlanId::Starter);
        starter.monthly_price = usd(4900);
        let down = plan_change(PlanId::Growth, usd(9900), &starter, &april, date!(2027 - 04 - 15)).unwrap();
        assert_eq!(down, PlanChange::Downgrade { from: date!(2027 - 05 - 01) });
        assert_eq!(
            plan_change(PlanId::Starter, usd(4900), &starter, &april, date!(2027 - 04 - 15)),
            Err(PlanChangeError::SamePlan)
        );
        let mut yen = growth.clone();
        yen.monthly_price = Money::from_minor(9900, Currency::parse("jpy").unwrap()).unwrap();
        assert!(matches!(
            plan_change(PlanId::Starter, usd(4900), &yen, &april, date!(2027 - 04 - 15)),
            Err(PlanChangeError::Currency { .. })
        ));
    }

    #[test]
    fn an_unpaid_cycle_pauses_after_the_grace_days() {
        let failed = PlanPayment::PastDue { since: date!(2027 - 05 - 01) };
        assert_eq!(failed.pauses_on(0), Some(date!(2027 - 05 - 01)));
        assert_eq!(failed.pauses_on(7), Some(date!(2027 - 05 - 08)));
        assert_eq!(PlanPayment::Paid.pauses_on(7), None);
    }
}
