//! Stripe: webhook signatures, the payment gateway trait and its async-stripe implementation.
//! The fake Stripe server the tests and the local runner use is the `stripe-fake` crate.

#[cfg(feature = "stripe")]
pub mod client;
pub mod event;
pub mod gateway;
pub mod ids;
pub mod signature;
