//! Card payment methods: made when a customer pays or saves a card on the pay page, read back
//! (alone or through their customer), detached, and renewed by the network's card updater
//! (control endpoint).

use serde_json::{Value, json};

use super::{Acct, R, Reply, State, invalid, missing, of_account, owned, random_id, this_month_utc};

/// Earliest and latest expiry year taken: four digits, as Stripe shows `exp_year`.
const EXP_YEARS: std::ops::RangeInclusive<u32> = 2000..=9999;

/// A card as its PaymentMethod shows it: what the product shows a customer (brand, last 4,
/// expiry), never the number. Its expiry decides whether an off-session charge goes through.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Card {
    /// Stripe's name for it: `visa`, `mastercard`, `amex`...
    pub brand: String,
    pub last4: String,
    /// 1 to 12.
    pub exp_month: u32,
    pub exp_year: u32,
}

impl Default for Card {
    /// Stripe's test card 4242, as the pay page offers it first.
    fn default() -> Self {
        TestCard::Visa.card()
    }
}

impl Card {
    /// What Stripe would refuse to take as a card: no brand, a last 4 that is not four digits,
    /// an expiry that is no month.
    pub fn check(&self) -> Result<(), String> {
        if self.brand.trim().is_empty() {
            return Err("brand is empty".into());
        }
        if self.last4.len() != 4 || !self.last4.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("last4 is four digits, not {:?}", self.last4));
        }
        check_expiry(self.exp_month, self.exp_year)
    }

    /// Whether the card has expired: it works through the last day of its expiry month (UTC;
    /// Stripe gives no time zone), so the card of March 2026 expired on April 1st, 2026.
    pub fn expired(&self) -> bool {
        self.expired_in(this_month_utc())
    }

    /// Whether the card has expired by `(year, month)` (the fake's clock's month, when a
    /// renewal charges it months ahead of the real time).
    pub fn expired_in(&self, (year, month): (u32, u32)) -> bool {
        (self.exp_year, self.exp_month) < (year, month)
    }
}

/// An expiry Stripe takes: a month of 1 to 12 in a four-digit year.
pub fn check_expiry(exp_month: u32, exp_year: u32) -> Result<(), String> {
    if !(1..=12).contains(&exp_month) {
        return Err(format!("exp_month is 1 to 12, not {exp_month}"));
    }
    if !EXP_YEARS.contains(&exp_year) {
        return Err(format!("exp_year is a four-digit year, not {exp_year}"));
    }
    Ok(())
}

/// The pay page's test cards, each sent by the form as a short code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestCard {
    /// Visa 4242, good for three more years: the default.
    Visa,
    /// Mastercard 4444, good for two more years.
    Mastercard,
    /// Visa 0341, expiring at the end of this month: still charged today, about to lapse.
    VisaExpiringThisMonth,
}

impl TestCard {
    pub const ALL: [TestCard; 3] = [Self::Visa, Self::Mastercard, Self::VisaExpiringThisMonth];

    pub fn code(self) -> &'static str {
        match self {
            Self::Visa => "visa",
            Self::Mastercard => "mastercard",
            Self::VisaExpiringThisMonth => "visa_expiring",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    /// Its details, with the expiry counted from today.
    pub fn card(self) -> Card {
        let (year, month) = this_month_utc();
        let (brand, last4, exp_month, exp_year) = match self {
            Self::Visa => ("visa", "4242", 12, year + 3),
            Self::Mastercard => ("mastercard", "4444", 12, year + 2),
            Self::VisaExpiringThisMonth => ("visa", "0341", month, year),
        };
        Card { brand: brand.into(), last4: last4.into(), exp_month, exp_year }
    }

    /// What the page's list shows: `Visa 4242, expires 12/2029`.
    pub fn label(self) -> String {
        let card = self.card();
        let name = match self {
            Self::Visa | Self::VisaExpiringThisMonth => "Visa",
            Self::Mastercard => "Mastercard",
        };
        let when = match self {
            Self::VisaExpiringThisMonth => "this month, ",
            Self::Visa | Self::Mastercard => "",
        };
        format!("{name} {}, expires {when}{:02}/{}", card.last4, card.exp_month, card.exp_year)
    }
}

#[derive(Debug, Clone)]
pub(super) struct PaymentMethod {
    seq: u64,
    pub(super) id: String,
    account: Acct,
    created: i64,
    /// The customer it is saved on; `None` once detached, or if it never was.
    pub(super) customer: Option<String>,
    pub(super) card: Card,
}

owned_by_account_field!(PaymentMethod);

/// Stripe's `display_brand`: the brand as the customer should read it.
fn display_brand(brand: &str) -> &str {
    match brand {
        "amex" => "american_express",
        "diners" => "diners_club",
        other => other,
    }
}

/// The same card (brand and last 4: all the fake knows of it) always has the same fingerprint,
/// as Stripe's does for the same number, so code that spots a card saved twice can be tested.
fn fingerprint(card: &Card) -> String {
    // FNV-1a: stable across runs and Rust versions, unlike std's hasher.
    let hash = format!("{}/{}", card.brand, card.last4)
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let mut rng = fastrand::Rng::with_seed(hash);
    std::iter::repeat_with(|| rng.alphanumeric()).take(16).collect()
}

impl State {
    /// A new card PaymentMethod of `account`, saved on `customer` if given: its id.
    pub(super) fn new_payment_method(&mut self, account: &Acct, customer: Option<String>, card: Card) -> String {
        let pm = PaymentMethod {
            seq: self.next_seq(),
            id: random_id("pm_", 24),
            account: account.clone(),
            created: self.now(),
            customer,
            card,
        };
        let id = pm.id.clone();
        self.payment_methods.insert(id.clone(), pm);
        id
    }

    pub(super) fn payment_method_json(pm: &PaymentMethod) -> Value {
        let c = &pm.card;
        json!({
            "id": pm.id,
            "object": "payment_method",
            "allow_redisplay": "unspecified",
            "billing_details": {
                "address": { "city": null, "country": null, "line1": null, "line2": null, "postal_code": null, "state": null },
                "email": null,
                "name": null,
                "phone": null,
                "tax_id": null,
            },
            "card": {
                "brand": c.brand,
                "checks": { "address_line1_check": null, "address_postal_code_check": null, "cvc_check": "pass" },
                "country": "US",
                "display_brand": display_brand(&c.brand),
                "exp_month": c.exp_month,
                "exp_year": c.exp_year,
                "fingerprint": fingerprint(c),
                "funding": "credit",
                "generated_from": null,
                "last4": c.last4,
                "networks": { "available": [c.brand], "preferred": null },
                "regulated_status": "unregulated",
                "three_d_secure_usage": { "supported": true },
                "wallet": null,
            },
            "created": pm.created,
            "customer": pm.customer,
            "livemode": false,
            "metadata": {},
            "type": "card",
        })
    }

    /// `GET /v1/payment_methods/{id}`.
    pub fn retrieve_payment_method(&self, acct: &Acct, id: &str) -> R<Reply> {
        let pm = owned(&self.payment_methods, acct, "PaymentMethod", id, None)?;
        Ok(Reply::ok(Self::payment_method_json(pm)))
    }

    /// `GET /v1/customers/{customer}/payment_methods/{id}`: only a card saved on that customer;
    /// any other (detached, another customer's) is as missing as one that never was.
    pub fn retrieve_customer_payment_method(&self, acct: &Acct, customer: &str, id: &str) -> R<Reply> {
        self.customer(acct, customer, None)?;
        let pm = owned(&self.payment_methods, acct, "PaymentMethod", id, None)?;
        if pm.customer.as_deref() != Some(customer) {
            return Err(missing("PaymentMethod", id, None));
        }
        Ok(Reply::ok(Self::payment_method_json(pm)))
    }

    /// `POST /v1/payment_methods/{id}/detach`: the card is no longer saved on its customer and
    /// can't be charged again. Event `payment_method.detached`, with the customer it had in
    /// `previous_attributes`.
    pub fn detach_payment_method(&mut self, acct: &Acct, id: &str) -> R<Reply> {
        owned(&self.payment_methods, acct, "PaymentMethod", id, None)?;
        let pm = self.payment_methods.get_mut(id).expect("found above");
        let Some(customer) = pm.customer.take() else {
            return Err(invalid(
                None,
                "The payment method you provided is not attached to a customer so detachment is impossible.",
                None,
            ));
        };
        let body = Self::payment_method_json(pm);
        self.emit("payment_method.detached", acct, body.clone(), Some(json!({ "customer": customer })));
        Ok(Reply::ok(body))
    }

    /// The card updater: the bank issued the card anew with another expiry. Event
    /// `payment_method.automatically_updated`, with the old expiry in `previous_attributes`.
    pub fn update_card_expiry(&mut self, id: &str, exp_month: u32, exp_year: u32) -> Result<Value, String> {
        check_expiry(exp_month, exp_year)?;
        let pm = self.payment_methods.get_mut(id).ok_or_else(|| format!("no payment method {id}"))?;
        let previous = json!({ "card": { "exp_month": pm.card.exp_month, "exp_year": pm.card.exp_year } });
        (pm.card.exp_month, pm.card.exp_year) = (exp_month, exp_year);
        let (body, account) = (Self::payment_method_json(pm), pm.account.clone());
        self.emit("payment_method.automatically_updated", &account, body.clone(), Some(previous));
        Ok(body)
    }

    pub fn payment_methods_of_account(&self, account: &Acct) -> Vec<Value> {
        of_account(&self.payment_methods, account, |pm| pm.seq).into_iter().map(Self::payment_method_json).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(last4: &str, exp_month: u32, exp_year: u32) -> Card {
        Card { brand: "visa".into(), last4: last4.into(), exp_month, exp_year }
    }

    #[test]
    fn a_card_works_through_its_expiry_month() {
        let (year, month) = this_month_utc();
        assert!(!card("4242", month, year).expired());
        let last_month = if month == 1 { card("4242", 12, year - 1) } else { card("4242", month - 1, year) };
        assert!(last_month.expired());
        assert!(!TestCard::VisaExpiringThisMonth.card().expired());
        assert_eq!(Card::default(), card("4242", 12, year + 3));
    }

    #[test]
    fn a_card_is_checked_as_stripe_would() {
        assert_eq!(Card::default().check(), Ok(()));
        for bad in [card("424", 1, 2030), card("42a2", 1, 2030), card("4242", 0, 2030), card("4242", 13, 2030)] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
        assert!(card("4242", 1, 30).check().is_err(), "a two-digit year");
        assert!(Card { brand: " ".into(), ..Card::default() }.check().is_err());
    }

    #[test]
    fn test_cards_round_trip_their_codes_and_say_their_expiry() {
        for c in TestCard::ALL {
            assert_eq!(TestCard::parse(c.code()), Some(c));
            assert_eq!(c.card().check(), Ok(()));
        }
        let (year, _) = this_month_utc();
        assert_eq!(TestCard::Visa.label(), format!("Visa 4242, expires 12/{}", year + 3));
        assert!(TestCard::VisaExpiringThisMonth.label().starts_with("Visa 0341, expires this month, "));
    }

    #[test]
    fn the_same_card_has_the_same_fingerprint() {
        assert_eq!(fingerprint(&card("4242", 1, 2030)), fingerprint(&card("4242", 12, 2031)));
        assert_ne!(fingerprint(&card("4242", 1, 2030)), fingerprint(&card("4444", 1, 2030)));
        assert_eq!(fingerprint(&card("4242", 1, 2030)).len(), 16);
    }
}
