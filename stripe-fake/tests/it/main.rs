//! One test binary (one link, not one per file: linking dominates the build): the gateway over
//! async-stripe against the fake, the fake's objects against async-stripe's parser, the control endpoints,
//! saved cards, the List Events API, and receipts (invoices, charges' receipts, their pages).

mod cards;
mod control;
mod events_list;
mod gateway;
mod objects;
mod receipts;
mod support;
