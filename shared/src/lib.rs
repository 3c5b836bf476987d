pub mod domain;
pub mod http;
pub mod ops;
pub mod runtime;
pub mod store;
pub mod stripe;
