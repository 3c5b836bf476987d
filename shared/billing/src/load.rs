//! An operation's first two steps: the keys it needs, read with the request's idempotency
//! record in one round trip. The operation then decides on what it read and commits once
//! ([`Billing::commit`]).

use domain::{
    AccessDenied, AddonCode, CreditRateTerms, PartnerAddon, PartnerId, Plan, PlanId, TopupOptionList, Workspace,
    WorkspaceId,
};
use store::records::StripeConnection;
use store::{Committed, IdempotencyKey, Item, Key, Snapshot, Table, keys, records};

use super::{Billing, OpError, Reply};

/// The snapshot of a fresh [`Read`]; for a request answered before, like `?`, returns the
/// stored answer from the operation.
macro_rules! fresh {
    ($read:expr) => {
        match $read {
            $crate::load::Read::Answered(reply) => return Ok(reply),
            $crate::load::Read::Fresh(read) => read,
        }
    };
}
pub(crate) use fresh;

/// Who asks for a change of a workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asker<'a> {
    /// The workspace's admin (or the platform's process acting as it); the token may name the
    /// workspace's partner.
    Workspace(Option<&'a PartnerId>),
    /// A member of the workspace, paying: only if the workspace's partner granted `sub` billing
    /// access, else 403, even on a replay.
    Member { partner: Option<&'a PartnerId>, sub: &'a str },
    /// An admin of the workspace's partner: refused while the partner is suspended, and
    /// another partner's workspace is "not found".
    Partner(&'a PartnerId),
    /// The platform.
    Platform,
}

/// Why a workspace member may not pay.
pub const NOT_A_BILLING_MANAGER: &str =
    "billing is managed by the workspace's admins and the users its partner granted billing access";

/// What an operation's read found. A change of a workspace reads the workspace with the rest:
/// `Read<(Workspace, Snapshot)>`.
pub(crate) enum Read<T = Snapshot> {
    /// The request was answered before: answer the same.
    Answered(Reply),
    /// The items to decide on.
    Fresh(T),
}

impl<T: Table> Billing<T> {
    /// Reads `keys` with the idempotency record of `idem` in one `BatchGetItem`. A request that
    /// was already answered is answered the same way again, before anything is re-checked: a
    /// replay must not turn into a different outcome because the world moved on (the add-on is
    /// now cancelled, the balance is lower, a setting changed). The transaction's own
    /// idempotency condition still guards the race between two first tries.
    pub(crate) async fn load(&self, idem: &IdempotencyKey, keys: &[Key]) -> Result<Read, OpError> {
        let loaded = self.store.load(idem, self.clock.now(), keys).await?;
        match loaded.used {
            None => Ok(Read::Fresh(loaded.snapshot)),
            Some(used) => answered(used),
        }
    }

    /// [`Billing::load`] for a partner's own change: the partner's profile is read with it, and a
    /// partner the platform suspended is refused first, even on a replay (as every partner route
    /// is). A partner that doesn't exist passes, for the operation to answer.
    pub(crate) async fn load_for_partner(
        &self,
        p: &PartnerId,
        idem: &IdempotencyKey,
        keys: &[Key],
    ) -> Result<Read, OpError> {
        let profile = keys::partner_profile(p);
        let mut all = Vec::with_capacity(keys.len() + 1);
        all.push(profile.clone());
        all.extend_from_slice(keys);
        let loaded = self.store.load(idem, self.clock.now(), &all).await?;
        if is_suspended(loaded.snapshot.get(&profile))? {
            return Err(OpError::AccessDenied(AccessDenied::PartnerSuspended));
        }
        match loaded.used {
            None => Ok(Read::Fresh(loaded.snapshot)),
            Some(used) => answered(used),
        }
    }

    /// [`Billing::load`] for a change a workspace's user asks for: the workspace is read with
    /// it, and `keys` of its partner. Who asks comes before what was answered: a token whose
    /// partner is not the workspace's is "not found", and never reads that workspace's stored
    /// answers back through a known key. The partner's keys come in the same read when the token
    /// names the partner or this instance has seen the workspace; else the workspace is read
    /// first, on its own.
    async fn load_for_workspace(
        &self,
        w: &WorkspaceId,
        partner_claim: Option<&PartnerId>,
        member: Option<&str>,
        idem: &IdempotencyKey,
        keys: impl Fn(&PartnerId) -> Vec<Key>,
    ) -> Result<Read<(Workspace, Snapshot)>, OpError> {
        let mut partner = match partner_claim.cloned().or_else(|| self.known_partner(w)) {
            Some(p) => p,
            None => self.caller_workspace(w, None).await?.partner,
        };
        // At most twice: a remembered partner that was wrong is corrected by the first read.
        for _ in 0..2 {
            let mut all = vec![keys::workspace_profile(w)];
            all.extend(keys(&partner));
            all.extend(member.map(|_| keys::billing_managers(w)));
            let loaded = self.store.load(idem, self.clock.now(), &all).await?;
            let ws = workspace(&loaded.snapshot, w)?;
            if partner_claim.is_some_and(|p| p != &ws.partner) {
                return Err(OpError::NotFound("workspace"));
            }
            self.remember_partner(&ws);
            if ws.partner != partner {
                // Read for another partner than the workspace's (a workspace never changes
                // partner, so this takes a remembered partner that was wrong): again, for its own.
                partner = ws.partner;
                continue;
            }
            if let Some(sub) = member {
                let managers = records::billing_managers_from(loaded.snapshot.get(&keys::billing_managers(w)))?;
                if !managers.holds(sub) {
                    return Err(OpError::Forbidden(NOT_A_BILLING_MANAGER));
                }
            }
            return match loaded.used {
                None => Ok(Read::Fresh((ws, loaded.snapshot))),
                Some(used) => answered(used),
            };
        }
        Err(OpError::Conflict)
    }

    /// The one read of a change of workspace `w` that `asker` asks for: the workspace and `keys`
    /// of its partner with the idempotency record, checked as [`Asker`] says.
    pub(crate) async fn load_workspace_change(
        &self,
        w: &WorkspaceId,
        asker: Asker<'_>,
        idem: &IdempotencyKey,
        keys: impl Fn(&PartnerId) -> Vec<Key>,
    ) -> Result<Read<(Workspace, Snapshot)>, OpError> {
        let (claim, member) = match asker {
            Asker::Partner(p) => {
                let mut needed = keys(p);
                needed.push(keys::workspace_profile(w));
                return Ok(match self.load_for_partner(p, idem, &needed).await? {
                    Read::Answered(reply) => Read::Answered(reply),
                    Read::Fresh(read) => Read::Fresh((partner_workspace(&read, p, w)?, read)),
                });
            }
            Asker::Workspace(claim) => (claim, None),
            Asker::Member { partner, sub } => (partner, Some(sub)),
            Asker::Platform => (None, None),
        };
        self.load_for_workspace(w, claim, member, idem, keys).await
    }
}

fn answered<T>(used: Committed) -> Result<Read<T>, OpError> {
    match used {
        Committed::Replayed { response } => Ok(Read::Answered(Reply::from_stored(response)?)),
        Committed::KeyReused | Committed::Applied => Err(OpError::KeyReused),
    }
}

/// Whether a partner's profile as read says it is suspended (`None`: no such partner).
pub(crate) fn is_suspended(profile: Option<&Item>) -> Result<bool, OpError> {
    Ok(profile.map(records::partner_profile_from).transpose()?.is_some_and(|p| p.status.is_suspended()))
}

/// The partner's profile as read; 404 if there is no such partner.
pub(crate) fn partner_profile(read: &Snapshot, p: &PartnerId) -> Result<records::PartnerProfile, OpError> {
    let item = read.get(&keys::partner_profile(p)).ok_or(OpError::NotFound("partner"))?;
    Ok(records::partner_profile_from(item)?)
}

/// A workspace of partner `p` as read: another partner's is "not found", exactly like one that
/// does not exist (see [`Billing::partner_workspace`]).
pub(crate) fn partner_workspace(read: &Snapshot, p: &PartnerId, w: &WorkspaceId) -> Result<Workspace, OpError> {
    owned_by(workspace(read, w)?, p)
}

/// `ws` if it is partner `p`'s; another partner's workspace is "not found".
pub(crate) fn owned_by(ws: Workspace, p: &PartnerId) -> Result<Workspace, OpError> {
    if &ws.partner != p {
        return Err(OpError::NotFound("workspace"));
    }
    Ok(ws)
}

/// A workspace as read, whoever owns it; 404 if there is none.
pub(crate) fn workspace(read: &Snapshot, w: &WorkspaceId) -> Result<Workspace, OpError> {
    let item = read.get(&keys::workspace_profile(w)).ok_or(OpError::NotFound("workspace"))?;
    Ok(records::workspace_from(item)?)
}

/// One of the partner's plans as read: its own terms, or the platform's defaults.
pub(crate) fn plan(read: &Snapshot, p: &PartnerId, id: PlanId) -> Result<Plan, OpError> {
    let item = read.get(&keys::partner_plan(p, id));
    Ok(item.map(records::plan_from).transpose()?.unwrap_or_else(|| Plan::default_for(id)))
}

/// The partner's Stripe connection as read, if it has one.
pub(crate) fn connection(read: &Snapshot, p: &PartnerId) -> Result<Option<StripeConnection>, OpError> {
    Ok(read.get(&keys::partner_stripe(p)).map(records::stripe_connection_from).transpose()?)
}

/// The partner's credit rate and its bounds as read, if it set one.
pub(crate) fn credit_rate(read: &Snapshot, p: &PartnerId) -> Result<Option<CreditRateTerms>, OpError> {
    Ok(read.get(&keys::partner_credit_rate(p)).map(records::credit_rate_from).transpose()?)
}

/// The partner's top-up options as read (none, version 0, if it never set them).
pub(crate) fn topup_options(read: &Snapshot, p: &PartnerId) -> Result<TopupOptionList, OpError> {
    Ok(read.get(&keys::partner_topups(p)).map(records::topup_options_from).transpose()?.unwrap_or_default())
}

/// The partner's terms for add-on `code` as read: its own, or the platform's defaults.
pub(crate) fn partner_addon(read: &Snapshot, p: &PartnerId, code: AddonCode) -> Result<PartnerAddon, OpError> {
    let item = read.get(&keys::partner_addon(p, code));
    Ok(item.map(records::partner_addon_from).transpose()?.unwrap_or_else(|| PartnerAddon::default_for(code)))
}
