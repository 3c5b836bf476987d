//! Stripe: webhook signatures today; the payment gateway trait, its async-stripe
//! implementation and the fake arrive with the top-up feature.

pub mod signature;
