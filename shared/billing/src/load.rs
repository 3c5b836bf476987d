//! An operation's first two steps: the keys it needs, read with the request's idempotency
//! record in one round trip. The operation then decides on what it read and commits once
//! ([`Billing::commit`]).

use domain::{AccessDenied, PartnerId, Plan, PlanId, Workspace, WorkspaceId};
use store::{Committed, IdempotencyKey, Item, Key, Snapshot, Table, keys, records};

use super::{Billing, OpError, Reply};

/// What an operation's read found.
pub(crate) enum Read {
    /// The request was answered before: answer the same.
    Answered(Reply),
    /// The items to decide on.
    Fresh(Snapshot),
}

impl<T: Table> Billing<T> {
    /// Reads `keys` with the idempotency record of `idem` in one `BatchGetItem`. A request
    /// already answered is answered again before anything is checked (see [`Billing::replay`]).
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
}

fn answered(used: Committed) -> Result<Read, OpError> {
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
    let ws = workspace(read, w)?;
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
