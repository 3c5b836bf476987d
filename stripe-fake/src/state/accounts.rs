//! Connect accounts: the partner's consent (OAuth code and token) and its withdrawal.

use serde_json::json;

use super::{Reply, State, random_id};
use crate::form::Param;

#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub livemode: bool,
    pub deauthorized: bool,
}

#[derive(Debug, Clone)]
pub(super) struct OAuthCodeState {
    account: String,
    used: bool,
}

impl State {
    /// A connected account, new unless `id` names one already there.
    pub fn create_account(&mut self, id: Option<&str>, livemode: bool) -> String {
        let id = id.map_or_else(|| random_id("acct_", 16), str::to_owned);
        self.accounts.entry(id.clone()).or_insert(Account { id: id.clone(), livemode, deauthorized: false });
        id
    }

    /// Whether calls may name `account` in `Stripe-Account`.
    pub fn account_usable(&self, account: &str) -> bool {
        self.accounts.get(account).is_some_and(|a| !a.deauthorized)
    }

    /// An authorization code, as Stripe redirects back with after the partner clicks Connect.
    pub fn issue_oauth_code(&mut self, account: Option<&str>, livemode: bool) -> (String, String) {
        let account = self.create_account(account, livemode);
        let code = random_id("ac_", 32);
        self.oauth_codes.insert(code.clone(), OAuthCodeState { account: account.clone(), used: false });
        (code, account)
    }

    /// `POST /oauth/token`. OAuth errors are not Stripe API errors: `{"error", "error_description"}`.
    pub fn oauth_token(&mut self, p: &Param) -> Reply {
        let oauth_error = |error: &str, description: String| Reply {
            status: 400,
            body: json!({ "error": error, "error_description": description }),
        };
        match p.str_at(&["grant_type"]) {
            Some("authorization_code") => {}
            Some(other) => return oauth_error("unsupported_grant_type", format!("Unsupported grant type: {other}")),
            None => return oauth_error("invalid_request", "No grant type specified".into()),
        }
        let Some(code) = p.str_at(&["code"]) else {
            return oauth_error("invalid_request", "No authorization code provided".into());
        };
        let Some(state) = self.oauth_codes.get_mut(code) else {
            return oauth_error("invalid_grant", format!("Authorization code does not exist: {code}"));
        };
        if state.used {
            return oauth_error(
                "invalid_grant",
                "This authorization code has already been used. All tokens issued with this code have been revoked."
                    .into(),
            );
        }
        state.used = true;
        let account = state.account.clone();
        let livemode = self.accounts.get(&account).is_some_and(|a| a.livemode);
        let mode = if livemode { "live" } else { "test" };
        Reply::ok(json!({
            "access_token": random_id(&format!("sk_{mode}_"), 24),
            "livemode": livemode,
            "refresh_token": random_id("rt_", 24),
            "scope": "read_write",
            "stripe_publishable_key": random_id(&format!("pk_{mode}_"), 24),
            "stripe_user_id": account,
            "token_type": "bearer",
        }))
    }

    /// The partner disconnected the platform: later calls naming the account are refused, and
    /// `account.application.deauthorized` is sent.
    pub fn deauthorize(&mut self, account: &str) -> Result<(), String> {
        let a = self.accounts.get_mut(account).ok_or_else(|| format!("no account {account}"))?;
        a.deauthorized = true;
        let application = json!({ "id": "ca_fakeplatform", "object": "application", "name": "Fake platform" });
        self.emit("account.application.deauthorized", &Some(account.to_owned()), application, None);
        Ok(())
    }
}
