//! Integration tests: one binary (link time), modules by subject. The DynamoDB tests need
//! DynamoDB Local; `scripts/test` starts it.

mod support;

mod api;
mod browser;
mod concurrency;
mod contract;
mod faults;
mod faults_everywhere;
mod isolation;
mod lambda_wiring;
mod local_clock;
mod logs;
mod model;
mod routes;
mod smoke;
mod stack;
mod timeouts;
