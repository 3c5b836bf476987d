//! Page cursors: what a client hands back to get the next page of a listing.
//!
//! A cursor is a typed position, never a raw key. On the wire it is base64url (no padding) of
//! `c1.<listing>.<owner>.<position fields>`: the format's version, which listing it pages, whose
//! listing it is (the wallet, or the partner) and the last item's position as checked fields.
//! Decoding takes the listing and owner the request is for: a cursor of another listing or of
//! another tenant, another version, or a field out of shape is [`InvalidCursor`] (400 `cursor`)
//! before anything is read. The store then rebuilds every key from the caller's own partition
//! and the position, so a cursor can only address a place in the caller's own listing and no
//! text of it reaches DynamoDB as it came. It carries no secret: a client that crafts one
//! reaches nothing it could not page to.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use domain::{PartnerId, WalletId, WorkspaceId};

use super::keys;
use super::table::IndexPosition;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a cursor this API returned for this listing")]
pub struct InvalidCursor;

const VERSION: &str = "c1";
const SEP: char = '.';
/// Longest cursor accepted. The longest one issued (a partner-ledger position: a 64-character
/// partner, a 64-character workspace and two numbers) is under 300 characters.
pub const MAX_CURSOR_LEN: usize = 512;
/// Longest event id accepted in a position (the outbox mints 28 characters).
const EVENT_ID_MAX_LEN: usize = 64;

/// The listings that page. A cursor of one is refused by every other.
#[derive(Debug, Clone, Copy)]
enum Listing {
    Ledger,
    PartnerLedger,
    Events,
    Workspaces,
    Partners,
    Deliveries,
}

impl Listing {
    fn tag(self) -> &'static str {
        match self {
            Listing::Ledger => "ledger",
            Listing::PartnerLedger => "partner-ledger",
            Listing::Events => "events",
            Listing::Workspaces => "workspaces",
            Listing::Partners => "partners",
            Listing::Deliveries => "deliveries",
        }
    }
}

/// The cursor text for `fields` of `listing`, owned by `owner`. No part may hold the separator:
/// every part is an id or a number we checked, so one that does is a broken invariant.
fn seal(listing: Listing, owner: &str, fields: &[&str]) -> String {
    let mut text = format!("{VERSION}{SEP}{}", listing.tag());
    for part in std::iter::once(&owner).chain(fields) {
        assert!(!part.is_empty() && !part.contains(SEP), "cursor part {part:?} breaks the format");
        text.push(SEP);
        text.push_str(part);
    }
    URL_SAFE_NO_PAD.encode(text)
}

/// The position fields of `cursor` when it is a cursor of `listing` owned by `owner`, handed to
/// `parse`, which checks each field.
fn open<T>(
    cursor: &str,
    listing: Listing,
    owner: &str,
    parse: impl FnOnce(&[&str]) -> Option<T>,
) -> Result<T, InvalidCursor> {
    if cursor.len() > MAX_CURSOR_LEN {
        return Err(InvalidCursor);
    }
    // The engine refuses padding and stray trailing bits: one cursor has one spelling.
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| InvalidCursor)?;
    let text = String::from_utf8(raw).map_err(|_| InvalidCursor)?;
    let parts: Vec<&str> = text.split(SEP).collect();
    match parts.as_slice() {
        [version, tag, who, fields @ ..] if *version == VERSION && *tag == listing.tag() && *who == owner => {
            parse(fields).ok_or(InvalidCursor)
        }
        _ => Err(InvalidCursor),
    }
}

/// A number in its one canonical spelling (no sign, no leading zero).
fn number<N: std::str::FromStr + ToString>(s: &str) -> Option<N> {
    let n: N = s.parse().ok()?;
    (n.to_string() == s).then_some(n)
}

/// A number as a key writes it: digits only, zero-padded to at least `width`.
fn padded<N: std::str::FromStr>(s: &str, width: usize) -> Option<N> {
    (s.len() >= width && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

/// After entry `seq` of one wallet's ledger (newest first or oldest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerCursor {
    seq: u64,
}

impl LedgerCursor {
    pub(crate) fn after(seq: u64) -> Self {
        assert!(seq >= 1, "ledger entries are numbered from 1");
        Self { seq }
    }

    pub fn decode(cursor: &str, wallet: &WalletId) -> Result<Self, InvalidCursor> {
        open(cursor, Listing::Ledger, &wallet.to_string(), |fields| match fields {
            [seq] => number(seq).filter(|&s| s >= 1).map(Self::after),
            _ => None,
        })
    }

    pub fn encode(&self, wallet: &WalletId) -> String {
        seal(Listing::Ledger, &wallet.to_string(), &[&self.seq.to_string()])
    }

    /// The sort key the next page starts after, in the caller's wallet partition.
    pub(crate) fn sort_key(&self) -> String {
        keys::ledger_sk(self.seq)
    }

    /// The entry the page after this cursor follows.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

/// After one entry of a partner's ledger across its workspaces: when it was written, and which
/// entry of which workspace (the partner-ledger index's sort key, typed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerLedgerCursor {
    written_ns: u128,
    workspace: WorkspaceId,
    seq: u64,
}

impl PartnerLedgerCursor {
    /// The position of the index item whose sort key is `sk`; `None` if `sk` is not one
    /// [`keys::partner_ledger_sk`] writes for a workspace's entry.
    pub(crate) fn from_index_sk(sk: &str) -> Option<Self> {
        let [ns, "WS", w, seq] = sk.split('#').collect::<Vec<_>>()[..] else {
            return None;
        };
        let position = Self {
            written_ns: padded(ns, 20)?,
            workspace: WorkspaceId::parse(w).ok()?,
            seq: padded(seq, 20).filter(|&s| s >= 1)?,
        };
        (position.index_sk() == sk).then_some(position)
    }

    pub fn decode(cursor: &str, p: &PartnerId) -> Result<Self, InvalidCursor> {
        open(cursor, Listing::PartnerLedger, p.as_str(), |fields| match fields {
            [ns, w, seq] => Some(Self {
                written_ns: number(ns)?,
                workspace: WorkspaceId::parse(w).ok()?,
                seq: number(seq).filter(|&s| s >= 1)?,
            }),
            _ => None,
        })
    }

    pub fn encode(&self, p: &PartnerId) -> String {
        let fields = [self.written_ns.to_string(), self.workspace.to_string(), self.seq.to_string()];
        seal(Listing::PartnerLedger, p.as_str(), &fields.each_ref().map(String::as_str))
    }

    fn index_sk(&self) -> String {
        keys::partner_ledger_sk(self.written_ns, &WalletId::Workspace(self.workspace.clone()), self.seq)
    }

    /// Where the next page starts in the caller's index partition: the entry's table key and
    /// index sort key, rebuilt from the position.
    pub(crate) fn index_position(&self) -> IndexPosition {
        let wallet = WalletId::Workspace(self.workspace.clone());
        IndexPosition { key: keys::ledger_entry(&wallet, self.seq), index_sk: self.index_sk() }
    }
}

/// After one of a partner's events: when it was written, the writer's tie-breaking sequence,
/// and its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventCursor {
    written_ns: u128,
    seq: u64,
    id: String,
}

impl EventCursor {
    /// The position of the event whose sort key is `sk`; `None` if `sk` is not one
    /// [`keys::event_sk`] writes.
    pub fn from_sort_key(sk: &str) -> Option<Self> {
        let (written, id) = sk.strip_prefix(keys::EVENT_PREFIX)?.split_once('#')?;
        let (ns, seq) = (written.get(..20)?, written.get(20..)?);
        let position = Self { written_ns: padded(ns, 20)?, seq: padded(seq, 10)?, id: event_id(id)? };
        (position.sort_key() == sk).then_some(position)
    }

    pub fn decode(cursor: &str, p: &PartnerId) -> Result<Self, InvalidCursor> {
        open(cursor, Listing::Events, p.as_str(), |fields| match fields {
            [ns, seq, id] => Some(Self { written_ns: number(ns)?, seq: number(seq)?, id: event_id(id)? }),
            _ => None,
        })
    }

    pub fn encode(&self, p: &PartnerId) -> String {
        let fields = [self.written_ns.to_string(), self.seq.to_string()];
        seal(Listing::Events, p.as_str(), &[&fields[0], &fields[1], &self.id])
    }

    /// The sort key the next page starts after, in the caller's partner partition.
    pub fn sort_key(&self) -> String {
        keys::event_sk(self.written_ns, self.seq, &self.id)
    }
}

/// After one of a partner's webhook deliveries: a delivery is at its event's place in the
/// outbox (`<written ns, 20 digits><seq, 10 digits>#<event id>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryCursor(EventCursor);

impl DeliveryCursor {
    /// The cursor after the delivery at `position`; `None` if it is not an outbox position.
    pub fn from_position(position: &str) -> Option<Self> {
        EventCursor::from_sort_key(&format!("{}{position}", keys::EVENT_PREFIX)).map(Self)
    }

    pub fn decode(cursor: &str, p: &PartnerId) -> Result<Self, InvalidCursor> {
        open(cursor, Listing::Deliveries, p.as_str(), |fields| match fields {
            [ns, seq, id] => Some(Self(EventCursor { written_ns: number(ns)?, seq: number(seq)?, id: event_id(id)? })),
            _ => None,
        })
    }

    pub fn encode(&self, p: &PartnerId) -> String {
        let fields = [self.0.written_ns.to_string(), self.0.seq.to_string()];
        seal(Listing::Deliveries, p.as_str(), &[&fields[0], &fields[1], &self.0.id])
    }

    /// The sort key the next page starts after, in the caller's partner partition.
    pub fn sort_key(&self) -> String {
        let event = self.0.sort_key();
        format!("DELIVERY#{}", event.strip_prefix(keys::EVENT_PREFIX).unwrap_or(&event))
    }
}

/// An event id as the outbox mints them: `evt_` and lowercase hexadecimal digits.
fn event_id(id: &str) -> Option<String> {
    let hex = id.strip_prefix("evt_")?;
    let ok = !hex.is_empty()
        && id.len() <= EVENT_ID_MAX_LEN
        && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    ok.then(|| id.to_owned())
}

/// After one workspace in a partner's list of workspaces (they list in id order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceCursor {
    after: WorkspaceId,
}

impl WorkspaceCursor {
    pub fn after(w: WorkspaceId) -> Self {
        Self { after: w }
    }

    pub fn decode(cursor: &str, p: &PartnerId) -> Result<Self, InvalidCursor> {
        open(cursor, Listing::Workspaces, p.as_str(), |fields| match fields {
            [w] => WorkspaceId::parse(w).ok().map(Self::after),
            _ => None,
        })
    }

    pub fn encode(&self, p: &PartnerId) -> String {
        seal(Listing::Workspaces, p.as_str(), &[self.after.as_str()])
    }

    /// The last workspace of the previous page; the caller's own listing starts after it.
    pub fn workspace(&self) -> &WorkspaceId {
        &self.after
    }
}

/// After one partner in the platform's list of partners (they list in id order). The platform
/// is the one owner of that listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerCursor {
    after: PartnerId,
}

impl PartnerCursor {
    const OWNER: &str = "platform";

    pub fn after(p: PartnerId) -> Self {
        Self { after: p }
    }

    pub fn decode(cursor: &str) -> Result<Self, InvalidCursor> {
        open(cursor, Listing::Partners, Self::OWNER, |fields| match fields {
            [p] => PartnerId::parse(p).ok().map(Self::after),
            _ => None,
        })
    }

    pub fn encode(&self) -> String {
        seal(Listing::Partners, Self::OWNER, &[self.after.as_str()])
    }

    /// The last partner of the previous page; the listing starts after it.
    pub fn partner(&self) -> &PartnerId {
        &self.after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PartnerId {
        PartnerId::parse(s).unwrap()
    }

    fn w(s: &str) -> WorkspaceId {
        WorkspaceId::parse(s).unwrap()
    }

    fn b64(text: &str) -> String {
        URL_SAFE_NO_PAD.encode(text)
    }

    #[test]
    fn every_kind_round_trips_for_its_owner_only() {
        let ws = WalletId::Workspace(w("ws-1"));
        let ledger = LedgerCursor::after(42);
        assert_eq!(LedgerCursor::decode(&ledger.encode(&ws), &ws), Ok(ledger));
        assert_eq!(LedgerCursor::decode(&ledger.encode(&ws), &WalletId::Workspace(w("ws-2"))), Err(InvalidCursor));
        assert_eq!(LedgerCursor::decode(&ledger.encode(&ws), &WalletId::Partner(p("ws-1"))), Err(InvalidCursor));

        let index_sk = keys::partner_ledger_sk(1_776_247_200_000_000_000, &ws, 7);
        let partner_ledger = PartnerLedgerCursor::from_index_sk(&index_sk).expect("a position");
        assert_eq!(partner_ledger.index_position().index_sk, index_sk);
        assert_eq!(partner_ledger.index_position().key, keys::ledger_entry(&ws, 7));
        let text = partner_ledger.encode(&p("acme"));
        assert_eq!(PartnerLedgerCursor::decode(&text, &p("acme")), Ok(partner_ledger));
        assert_eq!(PartnerLedgerCursor::decode(&text, &p("rival")), Err(InvalidCursor));

        let event_sk = keys::event_sk(1_776_247_200_000_000_001, 3, "evt_00ff");
        let event = EventCursor::from_sort_key(&event_sk).expect("a position");
        assert_eq!(event.sort_key(), event_sk);
        let text = event.encode(&p("acme"));
        assert_eq!(EventCursor::decode(&text, &p("acme")), Ok(event));
        assert_eq!(EventCursor::decode(&text, &p("rival")), Err(InvalidCursor));

        let workspace = WorkspaceCursor::after(w("ws-9"));
        let text = workspace.encode(&p("acme"));
        assert_eq!(WorkspaceCursor::decode(&text, &p("acme")), Ok(workspace));
        assert_eq!(WorkspaceCursor::decode(&text, &p("rival")), Err(InvalidCursor));

        let partner = PartnerCursor::after(p("acme"));
        assert_eq!(PartnerCursor::decode(&partner.encode()), Ok(partner));
        // A partner's workspace list is not the platform's partner list, whatever it names.
        assert_eq!(
            PartnerCursor::decode(&WorkspaceCursor::after(w("acme")).encode(&p("platform"))),
            Err(InvalidCursor)
        );
        assert_eq!(PartnerCursor::decode(&b64("c1.partners.platform.")), Err(InvalidCursor));
        assert_eq!(PartnerCursor::decode(&b64("c1.partners.platform.a b")), Err(InvalidCursor));
    }

    #[test]
    fn a_cursor_of_one_listing_is_refused_by_the_others() {
        let acme = p("acme");
        let own = WalletId::Partner(acme.clone());
        let ledger = LedgerCursor::after(1).encode(&own);
        let workspaces = WorkspaceCursor::after(w("ws-1")).encode(&acme);
        let events = EventCursor::from_sort_key(&keys::event_sk(5, 0, "evt_1")).unwrap().encode(&acme);
        let index_sk = keys::partner_ledger_sk(5, &WalletId::Workspace(w("ws-1")), 1);
        let partner_ledger = PartnerLedgerCursor::from_index_sk(&index_sk).unwrap().encode(&acme);
        for other in [&workspaces, &events, &partner_ledger] {
            assert_eq!(LedgerCursor::decode(other, &own), Err(InvalidCursor), "{other}");
        }
        for other in [&ledger, &events, &partner_ledger] {
            assert_eq!(WorkspaceCursor::decode(other, &acme), Err(InvalidCursor), "{other}");
        }
        for other in [&ledger, &workspaces, &partner_ledger] {
            assert_eq!(EventCursor::decode(other, &acme), Err(InvalidCursor), "{other}");
        }
        for other in [&ledger, &workspaces, &events] {
            assert_eq!(PartnerLedgerCursor::decode(other, &acme), Err(InvalidCursor), "{other}");
        }
    }

    #[test]
    fn crafted_cursors_are_refused() {
        let acme = p("acme");
        let wallet = WalletId::Workspace(w("ws-1"));
        // The raw index key the partner ledger used to hand out, with an empty index sort key.
        let old = "CldTI3gKTEVER0VSIzAwMDAwMDAwMDAwMDAwMDAwMDAx";
        assert_eq!(PartnerLedgerCursor::decode(old, &acme), Err(InvalidCursor));
        assert_eq!(LedgerCursor::decode(old, &wallet), Err(InvalidCursor));
        // The old ledger cursor: base64 of a raw sort key.
        assert_eq!(LedgerCursor::decode(&b64("LEDGER#00000000000000000001"), &wallet), Err(InvalidCursor));
        let refused = [
            "",
            "garbage!",
            "bm9wZQ",
            &b64("c1.ledger.ws:ws-1"),
            &b64("c1.ledger.ws:ws-1."),
            &b64("c1.ledger.ws:ws-1.0"),
            &b64("c1.ledger.ws:ws-1.01"),
            &b64("c1.ledger.ws:ws-1.+1"),
            &b64("c1.ledger.ws:ws-1.-1"),
            &b64("c1.ledger.ws:ws-1.18446744073709551616"),
            &b64("c1.ledger.ws:ws-1.1.2"),
            &b64("c2.ledger.ws:ws-1.1"),
            &b64("c1.ledger.ws:ws-1.1\n"),
            &"A".repeat(MAX_CURSOR_LEN + 1),
        ];
        for text in refused {
            assert_eq!(LedgerCursor::decode(text, &wallet), Err(InvalidCursor), "{text:?}");
        }
        assert_eq!(LedgerCursor::decode(&b64("c1.ledger.ws:ws-1.1"), &wallet), Ok(LedgerCursor::after(1)));
        // Padding and stray trailing bits are other spellings of a cursor, not cursors.
        let good = b64("c1.ledger.ws:ws-1.12");
        assert_eq!(LedgerCursor::decode(&format!("{good}=="), &wallet), Err(InvalidCursor));

        for fields in ["1.Ws-1.1", "1.ws-1.0", "1.ws-1", "x.ws-1.1", "1.ws#1.1", "1.ws-1.1.1"] {
            let text = b64(&format!("c1.partner-ledger.acme.{fields}"));
            assert_eq!(PartnerLedgerCursor::decode(&text, &acme), Err(InvalidCursor), "{fields}");
        }
        for fields in ["1.0.evt_", "1.0.evt_XY", "1.0.ev_12", "1.0.evt_12#x", "1.0", "-1.0.evt_1"] {
            let text = b64(&format!("c1.events.acme.{fields}"));
            assert_eq!(EventCursor::decode(&text, &acme), Err(InvalidCursor), "{fields}");
        }
        for fields in ["", "WS#ws-1", "Ws-1", "ws-1.ws-2"] {
            let text = b64(&format!("c1.workspaces.acme.{fields}"));
            assert_eq!(WorkspaceCursor::decode(&text, &acme), Err(InvalidCursor), "{fields:?}");
        }
    }

    #[test]
    fn stored_sort_keys_not_written_by_the_key_builders_have_no_position() {
        assert_eq!(PartnerLedgerCursor::from_index_sk(""), None);
        assert_eq!(PartnerLedgerCursor::from_index_sk("1#WS#ws-1#1"), None);
        assert_eq!(PartnerLedgerCursor::from_index_sk("00000000000000000001#PARTNER#p#00000000000000000001"), None);
        assert_eq!(EventCursor::from_sort_key("EVENT#"), None);
        assert_eq!(EventCursor::from_sort_key("EVENT#0000000000000000000100000000001#evt_1"), None);
        assert!(EventCursor::from_sort_key("EVENT#000000000000000000010000000001#evt_1").is_some());
    }
}
