//! [`routes!`](crate::routes): what every HTTP function's `lib.rs` starts with.

/// Declares an HTTP function's routes and writes its `handle`, the one entry point its `main.rs`,
/// the local runner and the tests call.
///
/// `ROUTES` lists the routes the function serves (`template.yaml` gives it exactly those; a
/// test checks). `handle` reads the caller from the authorizer's claims, refuses a route not in
/// `ROUTES` (404), then answers through [`handled`](crate::handled), which logs the request and
/// turns an error into its status code.
///
/// Either each route names its handler, `async fn(&Billing<T>, &Caller, &Request)`:
///
/// ```ignore
/// api::routes! {
///     "POST /workspace/addons" => buy,
///     "DELETE /workspace/addons/{addon_id}" => cancel,
/// }
/// ```
///
/// or one dispatcher, `async fn(&Billing<T>, &Caller, &'static str, &Request)`, takes them all,
/// for functions whose routes share their checks:
///
/// ```ignore
/// api::routes!(dispatch; "GET /workspace", "PUT /workspace/auto-topup");
/// ```
#[macro_export]
macro_rules! routes {
    ($($route:literal => $handler:path),+ $(,)?) => {
        $crate::routes!(@handle [$($route),+] |billing, caller, route, req| match route {
            $($route => $handler(billing, caller, req).await,)+
            other => unreachable!("route {other} is in ROUTES but not handled"),
        });
    };
    ($dispatch:path; $($route:literal),+ $(,)?) => {
        $crate::routes!(@handle [$($route),+] |billing, caller, route, req| $dispatch(billing, caller, route, req).await);
    };
    (@handle [$($route:literal),+] |$billing:ident, $caller:ident, $r:ident, $req:ident| $answer:expr) => {
        /// The routes this function serves.
        pub const ROUTES: &[&str] = &[$($route),+];

        /// Answers one request of [`ROUTES`].
        pub async fn handle<T: $crate::__private::Table>(
            $billing: &$crate::__private::Billing<T>,
            request: $crate::__private::Request,
        ) -> $crate::__private::Response<$crate::__private::Body> {
            $crate::handled(&request, async {
                let $caller = &$crate::Caller::from_request(&request)?;
                let $r = $crate::known_route(&request, ROUTES)?;
                let $req = &request;
                $answer
            })
            .await
        }
    };
}
