//! The platform's wholesale floor per point, per currency: the least a partner may ask for one
//! point, whether at its credit rate or inside a top-up option.
//!
//! Example: a partner sells at 0.25 USD a point where the platform's floor is 0.12; a rate
//! of 0.10 is refused, and so is an option of 10.00 USD for 100 points (0.10 a point). Bonus
//! tiers stay possible above the floor: 100.00 USD for 150 points is 0.6667 a point.
//!
//! Without exchange rates a floor in one currency says nothing about another, so a currency
//! without a floor can't be sold in at all (neither at a rate nor in an option): the platform
//! names every currency it lets partners sell in.
//!
//! Written as a deployment setting `usd=0.12,eur=0.11` (template.yaml's `WholesaleFloors`) and in
//! JSON as `{"usd": "0.12", "eur": "0.11"}` (a partner's terms).

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::{CreditRate, CreditRateError, Currency, TopupOption};

/// Most currencies one set of floors names: Stripe settles in about 135; a list this long is a
/// mistake, and the bound keeps a partner's profile item small.
pub const MAX_WHOLESALE_FLOORS: usize = 50;

/// The floor per point in each currency partners may sell in; at least one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WholesaleFloors(BTreeMap<Currency, CreditRate>);

/// What is wrong with a set of floors: `param` is the currency's code (or empty for the whole
/// set), `message` why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloorsError {
    pub param: String,
    pub message: String,
}

impl FloorsError {
    fn new(param: &str, message: impl ToString) -> Self {
        Self { param: param.to_owned(), message: message.to_string() }
    }
}

impl std::fmt::Display for FloorsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.param.is_empty() { f.write_str(&self.message) } else { write!(f, "{}: {}", self.param, self.message) }
    }
}

impl WholesaleFloors {
    /// From `(currency code, price per point)` pairs as written by a person: each currency once,
    /// each price a plain decimal (`"0.12"`) more than 0 with at most 4 places.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, FloorsError> {
        let mut floors = BTreeMap::new();
        for (code, price) in pairs {
            let rate = CreditRate::parse(code, price).map_err(|e| match e {
                CreditRateError::Currency(e) => FloorsError::new(code, e),
                e => FloorsError::new(code, e.to_string().replacen("price_per_point", "the floor", 1)),
            })?;
            if floors.insert(rate.currency(), rate).is_some() {
                return Err(FloorsError::new(code, "this currency is named twice"));
            }
            if floors.len() > MAX_WHOLESALE_FLOORS {
                return Err(FloorsError::new("", format!("at most {MAX_WHOLESALE_FLOORS} currencies")));
            }
        }
        if floors.is_empty() {
            return Err(FloorsError::new("", "at least one currency's floor is required"));
        }
        Ok(Self(floors))
    }

    /// The deployment setting: `usd=0.12,eur=0.11` (spaces around items are ignored).
    pub fn parse_setting(s: &str) -> Result<Self, FloorsError> {
        let pairs = s
            .split(',')
            .map(|item| {
                item.trim()
                    .split_once('=')
                    .map(|(c, p)| (c.trim(), p.trim()))
                    .ok_or_else(|| FloorsError::new("", format!("{:?} is not currency=price", item.trim())))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_pairs(pairs)
    }

    /// One currency's floor.
    pub fn single(rate: CreditRate) -> Self {
        Self(BTreeMap::from([(rate.currency(), rate)]))
    }

    pub fn get(&self, currency: Currency) -> Option<&CreditRate> {
        self.0.get(&currency)
    }

    pub fn iter(&self) -> impl Iterator<Item = &CreditRate> {
        self.0.values()
    }

    /// The setting's form, in currency order: `eur=0.11,usd=0.12`.
    pub fn to_setting(&self) -> String {
        self.0.values().map(|r| format!("{}={}", r.currency(), r.price_per_point())).collect::<Vec<_>>().join(",")
    }

    /// A credit rate sells any number of points at its price: it must be at or above the floor
    /// of its currency, and its currency must have one.
    pub fn check_rate(&self, rate: &CreditRate) -> Result<(), CreditRateError> {
        match self.get(rate.currency()) {
            Some(floor) => rate.validate_against(floor),
            None => Err(CreditRateError::NoFloor { found: rate.currency(), floors: self.currencies() }),
        }
    }

    /// A top-up option's price per point (its amount over its points) must be at or above the
    /// floor of its currency: 10.00 USD for 100 points is 0.10 a point, refused at 0.12;
    /// 100.00 USD for 150 points is 0.6667, fine. Compared as `amount >= floor x points`, so no
    /// division rounds the answer.
    pub fn check_option(&self, option: &TopupOption) -> Result<(), CreditRateError> {
        let currency = option.amount().currency();
        let Some(floor) = self.get(currency) else {
            return Err(CreditRateError::NoFloor { found: currency, floors: self.currencies() });
        };
        // points <= 1e12 with 2 places and a floor <= 1e6 with 4: exact in `Decimal`.
        let least: Decimal = option
            .points()
            .as_decimal()
            .checked_mul(floor.price_per_point())
            .expect("points and a floor are bounded far below Decimal's range");
        if option.amount().as_major() < least {
            return Err(CreditRateError::BelowWholesale { wholesale: *floor });
        }
        Ok(())
    }

    fn currencies(&self) -> String {
        self.0.keys().map(|c| c.code()).collect::<Vec<_>>().join(", ")
    }
}

impl Default for WholesaleFloors {
    /// One US cent a point in USD: a guard against nonsense rates (0.0001 a point, a typo) where
    /// the deployment sets nothing; a platform that charges per point sold sets its own.
    fn default() -> Self {
        Self::single(CreditRate::new(Currency::USD, Decimal::new(1, 2)).expect("one cent is a valid rate"))
    }
}

/// `{"usd": "0.12", "eur": "0.11"}`: each price at least the currency's decimals, as a rate shows it.
impl serde::Serialize for WholesaleFloors {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for rate in self.0.values() {
            map.serialize_entry(rate.currency().code(), &rate.price_text())?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Money;

    fn option(amount: &str, currency: &str, points: &str) -> TopupOption {
        let c = Currency::parse(currency).unwrap();
        TopupOption::new("Pack", Money::parse_major(amount, c).unwrap(), crate::Points::parse(points).unwrap()).unwrap()
    }

    #[test]
    fn the_setting_parses_and_refuses_what_is_malformed() {
        let f = WholesaleFloors::parse_setting("usd=0.12, EUR=0.11").unwrap();
        assert_eq!(f.to_setting(), "eur=0.11,usd=0.12");
        assert_eq!(serde_json::to_value(&f).unwrap(), serde_json::json!({ "eur": "0.11", "usd": "0.12" }));
        assert_eq!(WholesaleFloors::default().to_setting(), "usd=0.01");
        for (bad, param) in [
            ("", ""),
            ("usd", ""),
            ("usd=0.12,", ""),
            ("usd=abc", "usd"),
            ("usd=0", "usd"),
            ("usd=-0.1", "usd"),
            ("usd=0.00001", "usd"),
            ("xyz=0.1", "xyz"),
            ("usd=0.1,usd=0.2", "usd"),
        ] {
            assert_eq!(WholesaleFloors::parse_setting(bad).unwrap_err().param, param, "{bad:?}");
        }
        let many: Vec<String> = Currency::all().take(MAX_WHOLESALE_FLOORS + 1).map(|c| format!("{c}=1")).collect();
        assert!(WholesaleFloors::parse_setting(&many[..MAX_WHOLESALE_FLOORS].join(",")).is_ok());
        assert_eq!(WholesaleFloors::parse_setting(&many.join(",")).unwrap_err().param, "");
    }

    #[test]
    fn rates_and_options_below_the_floor_of_their_currency_are_refused() {
        // A 12 cent floor, a 25 cent price.
        let f = WholesaleFloors::parse_setting("usd=0.12").unwrap();
        let usd = |p: &str| CreditRate::parse("usd", p).unwrap();
        assert_eq!(f.check_rate(&usd("0.25")), Ok(()));
        assert_eq!(f.check_rate(&usd("0.12")), Ok(()));
        let floor = usd("0.12");
        assert_eq!(f.check_rate(&usd("0.10")), Err(CreditRateError::BelowWholesale { wholesale: floor }));
        assert_eq!(f.check_rate(&usd("0.1199")), Err(CreditRateError::BelowWholesale { wholesale: floor }));
        let eur = f.check_rate(&CreditRate::parse("eur", "5").unwrap()).unwrap_err();
        assert_eq!((eur.param(), eur.to_string().contains("usd")), ("currency", true), "{eur}");

        assert_eq!(f.check_option(&option("25.00", "usd", "100")), Ok(()));
        assert_eq!(f.check_option(&option("12.00", "usd", "100")), Ok(()), "exactly the floor");
        assert_eq!(f.check_option(&option("100.00", "usd", "150")), Ok(()), "a bonus tier above the floor");
        assert_eq!(
            f.check_option(&option("10.00", "usd", "100")),
            Err(CreditRateError::BelowWholesale { wholesale: floor })
        );
        // 99.99 points at 0.12 is 11.9988: 11.99 is below it, 12.00 is not.
        let below = Err(CreditRateError::BelowWholesale { wholesale: floor });
        assert_eq!(f.check_option(&option("11.99", "usd", "99.99")), below);
        assert_eq!(f.check_option(&option("12.00", "usd", "99.99")), Ok(()));
        assert!(matches!(f.check_option(&option("1000", "jpy", "10")), Err(CreditRateError::NoFloor { .. })));
    }
}
