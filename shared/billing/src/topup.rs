//! How a partner sells points: its top-up options (pay this amount,
//! get these points) and its credit rate (a price per point), both at or above the partner's
//! wholesale floor per point in their currency, and what a workspace is shown of them.
//!
//! Storage: the whole list of options is one item, `PARTNER#p / TOPUPS`, so that a PUT replaces
//! it atomically under a version check and a workspace reads it in one `GetItem`; 20 options are
//! a few kilobytes, far below DynamoDB's 400 KB item limit. (One `TOPUP#id` item per option
//! would look more natural, but replacing a list of those atomically would need a transaction of
//! deletes and puts sized by the old and new lists, for nothing gained.) The rate and its bounds
//! on one purchase are `PARTNER#p / RATE`; a partner without one simply has none.

use domain::{
    CreditRateError, CreditRateTerms, PartnerId, PartnerTopupOption, TopupOption, TopupOptionId, TopupOptionList,
    WholesaleFloors, Workspace,
};
use store::{Attr, Condition, Guard, Table, Write, keys, records};

use super::load::fresh;
use super::{Billing, MAX_OP_ATTEMPTS, Mutation, OpError, Replied};

/// Most top-up options a partner may offer. A workspace picks one from a short menu; a longer
/// list is a mistake, and a bound keeps the list one small item.
pub const MAX_TOPUP_OPTIONS: usize = 20;

/// What the platform itself decides, held by the operations.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlatformConfig {
    /// The deployment's wholesale floor per point in each currency partners may sell in
    /// (`WHOLESALE_FLOORS`), for every partner whose terms set none of its own. The default,
    /// one US cent in USD, only refuses nonsense rates: in this product the platform is paid
    /// for what a workspace consumes through the partner's own wallet, so a platform that also
    /// charges per point sold (a 12 cent floor under a 25 cent price, say) sets its figure.
    pub wholesale_floors: WholesaleFloors,
    /// Partner webhook endpoints may be `http://` and on any host: the local runner's and the
    /// tests' own servers. Never set in a deployed stack.
    pub local_webhook_endpoints: bool,
}

/// An option as the partner sends it: with the id of the option it replaces, or without one
/// for a new option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopupOptionDraft {
    pub id: Option<TopupOptionId>,
    pub option: TopupOption,
}

fn invalid_rate(e: CreditRateError) -> OpError {
    OpError::invalid(e.param(), e)
}

/// An option below its currency's floor names the option in its message; one in a currency
/// without a floor names the option's currency.
fn invalid_option(i: usize, option: &TopupOption, e: CreditRateError) -> OpError {
    match e {
        CreditRateError::BelowWholesale { wholesale } => OpError::invalid(
            "price_per_point",
            format!(
                "options[{i}]: {} {} for {} points is below the wholesale floor of {wholesale} per point",
                option.amount().as_major(),
                option.amount().currency(),
                option.points(),
            ),
        ),
        e => OpError::invalid(&format!("options[{i}].{}", e.param()), e),
    }
}

/// A partner's top-up terms as the partner manages them: its options, its credit rate with its
/// bounds, and the wholesale floors per point both must stay at or above.
#[derive(Debug, Clone, PartialEq)]
pub struct PartnerTopupTerms {
    pub options: Vec<PartnerTopupOption>,
    pub credit_rate: Option<CreditRateTerms>,
    pub floors: domain::WholesaleFloors,
}

/// What a workspace may pay for points: the options and the rate its partner sells at now, and
/// whether its partner's credit billing is on (a checkout is refused while it is off).
#[derive(Debug, Clone, PartialEq)]
pub struct TopupOffers {
    pub credit_billing: bool,
    /// What the partner calls its points.
    pub unit_name: String,
    pub options: Vec<PartnerTopupOption>,
    pub credit_rate: Option<CreditRateTerms>,
}

impl<T: Table> Billing<T> {
    /// Sets the platform's own figures (the default wholesale floors); [`Billing::new`] starts
    /// from [`PlatformConfig::default`].
    pub fn with_platform(mut self, platform: PlatformConfig) -> Self {
        self.platform = platform;
        self
    }

    /// The partner's top-up options in the partner's order, with the stored version.
    pub async fn topup_options(&self, p: &PartnerId) -> Result<TopupOptionList, OpError> {
        let item = self.store.get(&keys::partner_topups(p)).await?;
        Ok(item.as_ref().map(records::topup_options_from).transpose()?.unwrap_or_default())
    }

    /// The partner's credit rate and its bounds, if it set one. The rate was at or above the
    /// wholesale cost when it was saved; whoever sells at it checks it against the current one
    /// again ([`CreditRate::validate_against`]), since the platform may have raised its cost since.
    pub async fn credit_rate(&self, p: &PartnerId) -> Result<Option<CreditRateTerms>, OpError> {
        let item = self.store.get(&keys::partner_credit_rate(p)).await?;
        Ok(item.as_ref().map(records::credit_rate_from).transpose()?)
    }

    /// `GET /partner/topup-options`: the options with their ids, the credit rate with its
    /// bounds, and the wholesale floors per point that both must stay at or above.
    pub async fn partner_topup_options(&self, p: &PartnerId) -> Result<PartnerTopupTerms, OpError> {
        let profile = self.partner_profile(p).await?;
        let list = self.topup_options(p).await?;
        let credit_rate = self.credit_rate(p).await?;
        Ok(PartnerTopupTerms { options: list.options, credit_rate, floors: self.floors_of(&profile).clone() })
    }

    /// Replaces the partner's whole list of top-up options. An option sent with the id of one of
    /// the current options keeps that id; one without an id gets a fresh one; an id the partner
    /// doesn't have (or sends twice) is refused, naming `options[i].id`. Two options may have
    /// the same currency and amount: each is its own offer (a label, a bonus), and a checkout
    /// charges and credits exactly the one picked, whatever the others say.
    ///
    /// Each option's price per point (amount over points) must be at or above the wholesale
    /// floor of its currency, and its currency must have one ([`WholesaleFloors::check_option`]).
    ///
    /// The list is written with a version check against the list the ids were checked with; if
    /// another edit landed in between, the ids are checked again against it (a bounded number
    /// of times).
    pub async fn put_topup_options(
        &self,
        p: &PartnerId,
        drafts: Vec<TopupOptionDraft>,
        m: Mutation<'_, [PartnerTopupOption]>,
    ) -> Replied {
        let read = fresh!(self.load_for_partner(p, m.key(), &[keys::partner_topups(p)]).await?);
        if drafts.len() > MAX_TOPUP_OPTIONS {
            return Err(OpError::invalid("options", format!("at most {MAX_TOPUP_OPTIONS} top-up options")));
        }
        for (i, d) in drafts.iter().enumerate() {
            if let Some(id) = &d.id
                && drafts[..i].iter().any(|e| e.id.as_ref() == Some(id))
            {
                return Err(OpError::invalid(&format!("options[{i}].id"), "this id is given to two options"));
            }
        }
        let profile = super::load::partner_profile(&read, p)?;
        let floors = self.floors_of(&profile);
        for (i, d) in drafts.iter().enumerate() {
            floors.check_option(&d.option).map_err(|e| invalid_option(i, &d.option, e))?;
        }
        let ids: Vec<TopupOptionId> =
            drafts.iter().map(|d| d.id.clone().unwrap_or_else(TopupOptionId::generate)).collect();
        let options: Vec<PartnerTopupOption> = ids
            .into_iter()
            .zip(drafts.iter())
            .map(|(id, d)| PartnerTopupOption { id, option: d.option.clone() })
            .collect();
        let reply = m.answer(&options);
        // The list as read with the request, then as it is after each lost race.
        let mut current = super::load::topup_options(&read, p)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            for (i, d) in drafts.iter().enumerate() {
                if let Some(id) = &d.id
                    && !current.options.iter().any(|o| &o.id == id)
                {
                    return Err(OpError::invalid(
                        &format!("options[{i}].id"),
                        "the partner has no top-up option with this id; leave the id out to add a new option",
                    ));
                }
            }
            let condition = match current.version {
                0 => Condition::not_exists(Guard::TopupOptionsVersion),
                v => Condition::equals(Guard::TopupOptionsVersion, "version", Attr::n(v)),
            };
            let list = TopupOptionList { version: current.version + 1, options: options.clone() };
            let writes = vec![
                Write::Put { item: records::topup_options_item(p, &list, self.clock.now()), condition },
                Write::Check { key: keys::partner_profile(p), condition: Condition::exists(Guard::PartnerExists) },
            ];
            let outcome = self
                .commit(m.key(), writes, reply.clone(), |failed| {
                    if failed.contains(Guard::TopupOptionsVersion) {
                        OpError::Conflict
                    } else {
                        OpError::NotFound("partner")
                    }
                })
                .await;
            match outcome {
                Err(OpError::Conflict) if attempt < MAX_OP_ATTEMPTS => current = self.topup_options(p).await?,
                other => return other,
            }
        }
    }

    /// Sets the partner's credit rate and its bounds (checked by [`CreditRateTerms`]): the rate
    /// at or above the partner's wholesale floor in its currency, which must have one. A
    /// replacement, last writer wins, like the partner's other terms: a PUT without bounds
    /// removes them.
    pub async fn put_credit_rate(
        &self,
        p: &PartnerId,
        terms: &CreditRateTerms,
        m: Mutation<'_, CreditRateTerms>,
    ) -> Replied {
        let read = fresh!(self.load_for_partner(p, m.key(), &[]).await?);
        let profile = super::load::partner_profile(&read, p)?;
        self.floors_of(&profile).check_rate(terms.rate()).map_err(invalid_rate)?;
        let writes = vec![
            Write::Put { item: records::credit_rate_item(p, terms, self.clock.now()), condition: Condition::Always },
            Write::Check { key: keys::partner_profile(p), condition: Condition::exists(Guard::PartnerExists) },
        ];
        self.commit(m.key(), writes, m.answer(terms), |_| OpError::NotFound("partner")).await
    }

    /// `GET /workspace/topup-options`: what the workspace may pay for points, as it sees it
    /// (labels, amounts, points, the partner's rate and its bounds; never the wholesale cost). Reading is
    /// harmless, so a partner whose credit billing is off still shows them, with
    /// `"credit_billing": false` to say a checkout would be refused. A rate or an option that
    /// the partner's wholesale floors have since overtaken can't be sold, and is not shown.
    pub async fn workspace_topup_options(&self, ws: &Workspace) -> Result<TopupOffers, OpError> {
        let profile = self.partner_profile(&ws.partner).await?;
        let floors = self.floors_of(&profile);
        let mut list = self.topup_options(&ws.partner).await?;
        list.options.retain(|o| floors.check_option(&o.option).is_ok());
        let rate = self.credit_rate(&ws.partner).await?;
        let rate = rate.filter(|r| match floors.check_rate(r.rate()) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(partner = %ws.partner, error = %e, "credit rate no longer sellable; not shown");
                false
            }
        });
        let settings = profile.settings;
        Ok(TopupOffers {
            credit_billing: settings.credit_billing,
            unit_name: settings.unit_name,
            options: list.options,
            credit_rate: rate,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use time::macros::datetime;

    use super::*;
    use domain::FixedClock;
    use store::Store;
    use store::memory::MemoryTable;

    #[test]
    fn ids_are_checked_and_generated() {
        let id = TopupOptionId::generate();
        assert_eq!(TopupOptionId::parse(id.as_str()), Ok(id.clone()));
        assert_eq!(id.as_str().len(), 27);
        assert_ne!(TopupOptionId::generate(), id);
        for bad in ["", "to_", "ad_123", "to_a-b", "TO_abc", &format!("to_{}", "a".repeat(62))] {
            assert!(TopupOptionId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(TopupOptionId::parse(&format!("to_{}", "a".repeat(61))).is_ok());
    }

    #[test]
    fn the_default_floor_is_one_us_cent_and_can_be_set() {
        let clock = Arc::new(FixedClock::new(datetime!(2026-04-15 10:00 UTC)));
        let billing = Billing::new(Store::new(MemoryTable::new()), clock);
        assert_eq!(billing.platform.wholesale_floors.to_setting(), "usd=0.01");
        let twelve_cents = PlatformConfig {
            wholesale_floors: WholesaleFloors::parse_setting("usd=0.12").unwrap(),
            ..Default::default()
        };
        assert_eq!(billing.with_platform(twelve_cents.clone()).platform, twelve_cents);
    }

    #[test]
    fn a_refused_option_is_named() {
        let floors = WholesaleFloors::parse_setting("usd=0.12").unwrap();
        let cheap = TopupOption::parse("Cheap", "usd", 1000, "100").unwrap();
        match invalid_option(2, &cheap, floors.check_option(&cheap).unwrap_err()) {
            OpError::Invalid { param, message } => {
                assert_eq!(param, "price_per_point");
                assert!(message.starts_with("options[2]: 10.00 usd for 100.00 points"), "{message}");
                assert!(message.contains("0.12 usd"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let yen = TopupOption::parse("Yen", "jpy", 1000, "10").unwrap();
        match invalid_option(0, &yen, floors.check_option(&yen).unwrap_err()) {
            OpError::Invalid { param, message } => {
                assert_eq!(param, "options[0].currency");
                assert!(message.contains("no wholesale floor in jpy"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
}
