//! The floor for the init benchmark (`init-bench`): a Lambda that does nothing at init but
//! start the runtime, echoing each event back. Built in the same profile as the functions.
//!
//! An example of the tests crate: lambda_runtime reaches that crate only through lambda_http,
//! a dev-dependency (lambda_http re-exports the very lambda_runtime the functions use).

use lambda_http::lambda_runtime::{self, Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move { Ok::<_, Error>(event.payload) })).await
}
