//! One test binary (one link, not one per file: linking dominates the build): the gateway over
//! async-stripe against the fake, the fake's objects against async-stripe's parser, the control endpoints,
//! saved cards, and the List Events API.

mod cards;
mod control;
mod events_list;
mod gateway;
mod objects;
mod support;
