//! Billing access: a partner names, per workspace, the users (their tokens' `sub`) who may manage
//! its billing beside the workspace's admins: top up, save a card, change auto top-up, buy and
//! cancel add-ons. A workspace member without the grant reads but cannot pay.
//!
//! The grants are one item per workspace (`keys::billing_managers`), replaced whole under its
//! version, so a member's payment reads its grant in the payment's own read. Each grant and
//! revocation is a partner event (`billing_access.granted`, `billing_access.revoked`) written in
//! the same transaction, naming who did it.

use serde_json::json;

use domain::{PartnerId, WorkspaceId};
use store::records::{self, BillingManager, BillingManagers};
use store::{Condition, Guard, Table, Write, keys};

use super::events::{PartnerEventKind, event_write};
use super::load::{Asker, fresh};
use super::{Billing, MAX_OP_ATTEMPTS, Mutation, OpError, Replied};

/// Most users one workspace grants billing access to.
pub const MAX_BILLING_MANAGERS: usize = 100;
/// Longest `sub` a grant takes (the JWT's subject; identity providers use far less).
pub const SUB_MAX_LEN: usize = 255;

/// A grant or revocation as it came out: the workspace's managers after it, and whether it
/// changed anything (granting a user who holds access already, or revoking one who does not,
/// writes nothing).
#[derive(Debug, Clone, PartialEq)]
pub struct ManagersChanged {
    pub workspace: WorkspaceId,
    pub managers: BillingManagers,
    pub changed: bool,
}

/// A user's `sub` as a grant names it: 1 to 255 characters, none of them control characters,
/// no spaces at either end.
pub fn check_sub(sub: &str) -> Result<&str, OpError> {
    let ok = !sub.is_empty() && sub.len() <= SUB_MAX_LEN && !sub.chars().any(char::is_control) && sub.trim() == sub;
    if ok {
        Ok(sub)
    } else {
        Err(OpError::invalid("sub", format!("1 to {SUB_MAX_LEN} characters, as the token's sub")))
    }
}

/// What a partner does to a user's billing access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillingAccess {
    /// `POST /partner/workspaces/{id}/billing-managers`: the user may manage the billing.
    Grant,
    /// `POST /partner/workspaces/{id}/billing-managers/revoke`: no longer; 404 if it held no
    /// grant.
    Revoke,
}

impl<T: Table> Billing<T> {
    /// `GET /partner/workspaces/{id}/billing-managers`.
    pub async fn billing_managers(&self, p: &PartnerId, w: &WorkspaceId) -> Result<BillingManagers, OpError> {
        let [profile, managers] = self.read([keys::workspace_profile(w), keys::billing_managers(w)]).await?;
        let profile = profile.ok_or(OpError::NotFound("workspace"))?;
        super::load::owned_by(records::workspace_from(&profile)?, p)?;
        Ok(records::billing_managers_from(managers.as_ref())?)
    }

    /// Grants or revokes `sub`'s access to workspace `w`'s billing, as its partner `p`'s admin
    /// `by` (that admin's `sub`).
    pub async fn billing_access(
        &self,
        p: &PartnerId,
        w: &WorkspaceId,
        sub: &str,
        change: BillingAccess,
        by: &str,
        m: Mutation<'_, ManagersChanged>,
    ) -> Replied {
        let sub = check_sub(sub)?;
        let needed = |_: &PartnerId| vec![keys::billing_managers(w)];
        let (_, read) = fresh!(self.load_workspace_change(w, Asker::Partner(p), m.key(), needed).await?);
        let mut current = records::billing_managers_from(read.get(&keys::billing_managers(w)))?;
        for _ in 0..MAX_OP_ATTEMPTS {
            let now = self.clock.now();
            let mut next = current.clone();
            let kind = match change {
                BillingAccess::Grant if current.holds(sub) => None,
                BillingAccess::Grant => {
                    if current.managers.len() >= MAX_BILLING_MANAGERS {
                        return Err(OpError::invalid(
                            "sub",
                            format!("a workspace grants billing access to at most {MAX_BILLING_MANAGERS} users"),
                        ));
                    }
                    next.managers.push(BillingManager {
                        sub: sub.to_owned(),
                        granted_by: by.to_owned(),
                        granted_at: now,
                    });
                    Some(PartnerEventKind::BillingAccessGranted)
                }
                BillingAccess::Revoke if !current.holds(sub) => return Err(OpError::NotFound("billing manager")),
                BillingAccess::Revoke => {
                    next.managers.retain(|m| m.sub != sub);
                    Some(PartnerEventKind::BillingAccessRevoked)
                }
            };
            let version = |v: u64| {
                if v == 0 {
                    Condition::not_exists(Guard::BillingManagersVersion)
                } else {
                    Condition::equals(Guard::BillingManagersVersion, "version", store::Attr::n(v))
                }
            };
            let writes = match kind {
                // Nothing changes: the list is checked as read, so the answer is what holds.
                None => vec![Write::Check { key: keys::billing_managers(w), condition: version(current.version) }],
                Some(kind) => {
                    next.version = current.version + 1;
                    vec![
                        Write::Put {
                            item: records::billing_managers_item(w, &next),
                            condition: version(current.version),
                        },
                        event_write(p, w, kind, json!({ "sub": sub, "by": by }), now),
                    ]
                }
            };
            let outcome = ManagersChanged { workspace: w.clone(), managers: next, changed: kind.is_some() };
            let reply = m.answer(&outcome);
            match self.commit(m.key(), writes, reply, |_| OpError::Conflict).await {
                Err(OpError::Conflict) => {
                    let item = self.store.get(&keys::billing_managers(w)).await?;
                    current = records::billing_managers_from(item.as_ref())?;
                }
                other => return other,
            }
        }
        Err(OpError::Conflict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subs_are_checked() {
        for ok in ["a", "0b6f3c1e-8a55-4f9b-9c1e-2f6d7a1b3c4d", "auth0|5f7c8ec7c33c6c004bbafe82", "user@example.com"] {
            assert_eq!(check_sub(ok).ok(), Some(ok));
        }
        let long = "x".repeat(SUB_MAX_LEN + 1);
        for bad in ["", " a", "a ", "a\nb", "\u{7f}", long.as_str()] {
            assert!(check_sub(bad).is_err(), "{bad:?}");
        }
    }
}
