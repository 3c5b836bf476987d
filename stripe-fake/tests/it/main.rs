//! One test binary (one link, not one per file: linking dominates the build): the gateway over
//! async-stripe against the fake, the fake's objects against async-stripe's parser, the control endpoints,
//! saved cards, the List Events API, receipts (invoices, charges' receipts, their pages), and plans
//! billed in money (products, prices, subscriptions, invoices, the clock's renewals).

mod cards;
mod control;
mod events_list;
mod gateway;
mod objects;
mod receipts;
mod subscriptions;
mod support;
