//! One test binary (one link, not one per file: linking dominates the build): the gateway over
//! async-stripe against the fake, the fake's objects against async-stripe's parser, the control endpoints,
//! and saved cards.

mod cards;
mod control;
mod gateway;
mod objects;
mod support;
