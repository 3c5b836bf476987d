//! Stripe: webhook signatures, the payment gateway trait and its async-stripe implementation.
//! The fake Stripe server the tests and the local runner use is the `stripe-fake` crate.

#[cfg(feature = "client")]
pub mod client;
pub mod event;
pub mod gateway;
pub mod signature;
pub mod subscription;
#[cfg(feature = "client")]
mod transport;

/// Stripe's ids are values the domain holds (a partner's connected account, a payment); they are
/// defined there and named here too, where the gateway speaks them.
pub use domain::stripe_ids as ids;
