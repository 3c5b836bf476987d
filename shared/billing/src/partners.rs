//! The platform's side of its partners: signing one up (its id, name and the platform's terms
//! for it), reading and listing them, changing their terms, suspending and reinstating them.
//!
//! The partner's profile item (`PARTNER#p / PROFILE`) holds the partner's own settings and the
//! platform's part (name, status, wholesale floors), which only these operations change, each
//! under the profile's `version`. The billing mode lives in its own item (`PARTNER#p / BILLING`),
//! read by the access check without the profile. The platform's list is an index item per
//! partner (`PARTNERS / PARTNER#p`), written in the same transaction as the profile.
//!
//! A suspended partner keeps everything: its partner routes answer 403 `partner_suspended`, its
//! workspaces can't use meters, buy add-ons or start checkouts, and reinstating it restores all
//! of it. Money already paid is still credited (Stripe's webhooks), and renewals go on, so a
//! workspace's add-ons neither lapse nor go unpaid while its partner is suspended.

use domain::{AccessDenied, PartnerId, PartnerSettings, WalletMode, WholesaleFloors, check_label};
use store::records::{self, PartnerBilling, PartnerProfile, PartnerRef, PartnerStatus};
use store::{Attr, Condition, Guard, PageRequest, PartnerCursor, Table, Write, keys};

use super::load::{Read, fresh};
use super::{Billing, MAX_OP_ATTEMPTS, Mutation, OpError, Page, REASON_MAX_CHARS, Replied};

/// A partner as the platform sees it: its profile, billing mode and the wholesale floors in
/// force (its own, or the deployment's when `profile.floors` is none).
#[derive(Debug, Clone, PartialEq)]
pub struct PartnerDetails {
    pub profile: PartnerProfile,
    pub billing: PartnerBilling,
    pub floors: WholesaleFloors,
}

/// The platform's terms for a partner. `floors: None` follows the deployment's default floors
/// ([`super::PlatformConfig`]), so a change of the default reaches the partner too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerTerms {
    pub floors: Option<WholesaleFloors>,
    pub billing_mode: WalletMode,
}

/// A partner as the platform signs it up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPartner {
    pub id: PartnerId,
    pub name: String,
    pub terms: PartnerTerms,
}

pub(super) fn version_is(version: u64) -> Condition {
    // Profiles written before the platform's part was versioned have no `version` yet.
    if version == 0 {
        Condition::exists(Guard::PartnerVersion)
    } else {
        Condition::equals(Guard::PartnerVersion, "version", Attr::n(version))
    }
}

fn billing_version_is(version: u64) -> Condition {
    if version == 0 {
        Condition::not_exists(Guard::BillingVersion)
    } else {
        Condition::equals(Guard::BillingVersion, "version", Attr::n(version))
    }
}

/// The partner's name: 1 to 80 characters, trimmed, no control characters.
pub fn check_partner_name(name: &str) -> Result<String, OpError> {
    check_label(name).map_err(|_| OpError::invalid("name", "must be 1 to 80 characters, without control characters"))
}

impl<T: Table> Billing<T> {
    pub async fn partner_profile(&self, p: &PartnerId) -> Result<PartnerProfile, OpError> {
        let item = self.store.get(&keys::partner_profile(p)).await?.ok_or(OpError::NotFound("partner"))?;
        Ok(records::partner_profile_from(&item)?)
    }

    /// The floors the partner's prices are checked against: its own, or the deployment's.
    pub fn floors_of<'a>(&'a self, profile: &'a PartnerProfile) -> &'a WholesaleFloors {
        profile.floors.as_ref().unwrap_or(&self.platform.wholesale_floors)
    }

    /// In front of every partner route: a suspended partner is refused. A partner that doesn't
    /// exist passes: each route answers that itself, as before.
    pub async fn partner_admin_gate(&self, p: &PartnerId) -> Result<(), OpError> {
        if super::load::is_suspended(self.store.get(&keys::partner_profile(p)).await?.as_ref())? {
            return Err(OpError::AccessDenied(AccessDenied::PartnerSuspended));
        }
        Ok(())
    }

    /// `POST /platform/partners`: signs a partner up, with the platform's default catalog and
    /// plans, credit billing off until it connects Stripe. 409 `already_exists` if the id is
    /// taken (the platform chooses partner ids).
    pub async fn onboard_partner(&self, new: &NewPartner, m: Mutation<'_, PartnerDetails>) -> Replied {
        if let Read::Answered(reply) = self.load(m.key(), &[]).await? {
            return Ok(reply);
        }
        let name = check_partner_name(&new.name)?;
        let profile = PartnerProfile {
            id: new.id.clone(),
            name,
            settings: PartnerSettings::default(),
            status: PartnerStatus::Active,
            floors: new.terms.floors.clone(),
            version: 1,
            created_at: self.clock.now(),
        };
        let billing = PartnerBilling { mode: new.terms.billing_mode, version: 1 };
        self.insert_partner(&profile, Some(billing), m).await
    }

    /// Writes a new partner's profile, its index item and (when given) its billing mode, in
    /// one transaction.
    pub(super) async fn insert_partner(
        &self,
        profile: &PartnerProfile,
        billing: Option<PartnerBilling>,
        m: Mutation<'_, PartnerDetails>,
    ) -> Replied {
        let now = self.clock.now();
        let mut writes = vec![
            Write::Put { item: records::partner_item(profile), condition: Condition::not_exists(Guard::PartnerNew) },
            Write::Put {
                item: records::partner_ref_item(profile),
                condition: Condition::not_exists(Guard::PartnerNew),
            },
        ];
        if let Some(b) = &billing {
            let item = records::partner_billing_item(&profile.id, b, now);
            writes.push(Write::Put { item, condition: Condition::not_exists(Guard::PartnerNew) });
        }
        let reply = m.answer(&self.partner_details(profile.clone(), billing.unwrap_or_default()));
        self.commit(m.key(), writes, reply, |_| OpError::AlreadyExists("partner")).await
    }

    fn partner_details(&self, profile: PartnerProfile, billing: PartnerBilling) -> PartnerDetails {
        let floors = self.floors_of(&profile).clone();
        PartnerDetails { profile, billing, floors }
    }

    /// The profile and the billing mode in one read.
    async fn partner_and_billing(&self, p: &PartnerId) -> Result<(PartnerProfile, PartnerBilling), OpError> {
        let items = self.store.get_many(&[keys::partner_profile(p), keys::partner_billing(p)]).await?;
        let [profile, billing] = <[_; 2]>::try_from(items)
            .map_err(|_| OpError::Internal("a batch read answered another number of items".into()))?;
        let profile = records::partner_profile_from(&profile.ok_or(OpError::NotFound("partner"))?)?;
        Ok((profile, records::partner_billing_from(billing.as_ref())?))
    }

    /// `GET /platform/partners/{id}`.
    pub async fn platform_partner(&self, p: &PartnerId) -> Result<PartnerDetails, OpError> {
        let (profile, billing) = self.partner_and_billing(p).await?;
        Ok(self.partner_details(profile, billing))
    }

    /// `GET /platform/partners`: a page of partners in id order (one Query).
    pub async fn list_partners(&self, page: PageRequest<PartnerCursor>) -> Result<Page<PartnerRef>, OpError> {
        let start = page.after.as_ref().map(|c| keys::partner_ref(c.partner()).sk);
        let limit = page.limit;
        // One more than asked tells whether another page exists.
        let mut items =
            self.store.query_prefix(keys::PARTNERS_PK, keys::PARTNER_REF_PREFIX, start.as_deref(), limit + 1).await?;
        let more = items.len() > limit;
        items.truncate(limit);
        let refs = items.iter().map(records::partner_ref_from).collect::<Result<Vec<_>, _>>()?;
        let next_cursor = more.then(|| refs.last().map(|r| PartnerCursor::after(r.id.clone()).encode())).flatten();
        Ok(Page { items: refs, next_cursor })
    }

    /// `PUT /platform/partners/{id}/terms`: replaces the platform's terms for the partner (its
    /// floors and billing mode) in one transaction, checked against the versions read. Prices
    /// the partner saved before stay stored; a credit rate or option now below its floor can't
    /// be sold at (the checkout refuses it, the workspace no longer sees it) until the partner
    /// raises it.
    pub async fn put_partner_terms(
        &self,
        p: &PartnerId,
        terms: &PartnerTerms,
        m: Mutation<'_, PartnerDetails>,
    ) -> Replied {
        let change = |profile: &mut PartnerProfile, billing: &mut PartnerBilling| {
            profile.floors = terms.floors.clone();
            billing.mode = terms.billing_mode;
            true
        };
        self.change_partner(p, change, m).await
    }

    /// `POST /platform/partners/{id}/suspend`: a partner already suspended stays as it is (the
    /// first reason and time), answered 200.
    pub async fn suspend_partner(&self, p: &PartnerId, reason: &str, m: Mutation<'_, PartnerDetails>) -> Replied {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > REASON_MAX_CHARS {
            return Err(OpError::invalid(
                "reason",
                format!("a reason of 1 to {REASON_MAX_CHARS} characters is required"),
            ));
        }
        let at = self.clock.now();
        let change = |profile: &mut PartnerProfile, _: &mut PartnerBilling| {
            if profile.status.is_suspended() {
                return false;
            }
            profile.status = PartnerStatus::Suspended { reason: reason.to_owned(), at };
            true
        };
        self.change_partner(p, change, m).await
    }

    /// `POST /platform/partners/{id}/reinstate`: an active partner stays as it is, answered 200.
    pub async fn reinstate_partner(&self, p: &PartnerId, m: Mutation<'_, PartnerDetails>) -> Replied {
        let change = |profile: &mut PartnerProfile, _: &mut PartnerBilling| {
            if !profile.status.is_suspended() {
                return false;
            }
            profile.status = PartnerStatus::Active;
            true
        };
        self.change_partner(p, change, m).await
    }

    /// Reads the partner, lets `change` edit the platform's part (it answers whether it changed
    /// anything), and writes the profile, its index item and the billing mode in one
    /// transaction under the versions read; another change in between starts it over.
    async fn change_partner(
        &self,
        p: &PartnerId,
        change: impl Fn(&mut PartnerProfile, &mut PartnerBilling) -> bool,
        m: Mutation<'_, PartnerDetails>,
    ) -> Replied {
        let read = fresh!(self.load(m.key(), &[keys::partner_profile(p), keys::partner_billing(p)]).await?);
        // The partner as read with the request, then as it is after each lost race.
        let mut current = (
            super::load::partner_profile(&read, p)?,
            records::partner_billing_from(read.get(&keys::partner_billing(p)))?,
        );
        for _ in 0..MAX_OP_ATTEMPTS {
            let (read, read_billing) = current;
            let (mut profile, mut billing) = (read.clone(), read_billing);
            let writes = if change(&mut profile, &mut billing) {
                profile.version = read.version + 1;
                let now = self.clock.now();
                let mut writes = vec![
                    // The whole item, as read but for the platform's part: the version check
                    // keeps a settings change that landed in between.
                    Write::Put { item: records::partner_item(&profile), condition: version_is(read.version) },
                    Write::Put { item: records::partner_ref_item(&profile), condition: Condition::Always },
                ];
                if billing.mode != read_billing.mode {
                    billing.version = read_billing.version + 1;
                    writes.push(Write::Put {
                        item: records::partner_billing_item(p, &billing, now),
                        condition: billing_version_is(read_billing.version),
                    });
                }
                writes
            } else {
                vec![Write::Check { key: keys::partner_profile(p), condition: version_is(read.version) }]
            };
            let reply = m.answer(&self.partner_details(profile, billing));
            match self.commit(m.key(), writes, reply, |_| OpError::Conflict).await {
                Err(OpError::Conflict) => current = self.partner_and_billing(p).await?,
                other => return other,
            }
        }
        Err(OpError::Conflict)
    }
}
