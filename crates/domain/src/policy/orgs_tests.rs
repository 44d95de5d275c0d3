//! `Orgs` against in-memory stores: membership is never probed, an
//! organisation keeps an owner, its 2FA rule binds owners first, and an
//! invitation is capped, addressed and used once (issue 14).

use std::sync::Arc;

use super::{INVITATION_SECS, INVITES_PER_HOUR, OrgError, Orgs};
use crate::accounts::store::AccountRecord;
use crate::audit::AuditKind;
use crate::ids::AccountId;
use crate::policy::store::OrgRole;
use crate::sessions::SignedIn;
use crate::sessions::store::{SessionKind, SessionRecord};
use crate::testing::kit::Kit;
use crate::testing::orgs::MemOrgs;
use crate::testing::throttles::MemoryCounters;
use crate::testing::{account, ctx};
use crate::time::Timestamp;
use crate::token::TokenHash;

struct Fixture {
    orgs: Orgs,
    store: Arc<MemOrgs>,
    kit: Kit,
    owner: SignedIn,
    member: SignedIn,
}

fn signed_in(a: &AccountRecord) -> SignedIn {
    let at = Timestamp::from_secs(1_000_000);
    SignedIn {
        session: SessionRecord {
            id: TokenHash::from_stored(format!("s-{}", a.id.as_str())),
            account_id: a.id.clone(),
            kind: SessionKind::Full,
            created_at: at,
            last_seen_at: at,
            expires_at: at.plus_secs(3600),
            password_at: Some(at),
            second_factor_at: None,
            ip: "192.0.2.1".into(),
            user_agent: String::new(),
        },
        account: a.clone(),
    }
}

fn fixture() -> Fixture {
    let kit = Kit::new();
    let store = Arc::new(MemOrgs::default());
    let owner = account("o1", "owner@example.com");
    let member = account("m1", "member@example.com");
    store.add_account(owner.clone());
    store.add_account(member.clone());
    let orgs = Orgs {
        store: store.clone(),
        factors: store.holders.clone(),
        allowances: Arc::new(MemoryCounters::default()),
        outbox: kit.outbox.clone(),
        notices: kit.notices(store.clone()),
        auditor: kit.auditor.clone(),
        clock: kit.clock.clone(),
        rng: kit.rng.clone(),
        public_url: "https://id.example".into(),
    };
    Fixture { orgs, store, kit, owner: signed_in(&owner), member: signed_in(&member) }
}

impl Fixture {
    /// An organisation of the owner's with the member in it.
    async fn org_with_member(&self) -> String {
        let org = self.orgs.create_org(&self.owner, "Acme", &ctx()).await.expect("created").id;
        let inv =
            self.orgs.invite(&self.owner, &org, "member@example.com", OrgRole::Member, &ctx()).await.expect("inv");
        self.orgs.accept_invitation(&self.member, &inv.id, &ctx()).await.expect("joined");
        org
    }
}

#[tokio::test]
async fn a_stranger_finds_no_organisation_and_a_member_has_no_owner_powers() {
    let f = fixture();
    let org = f.orgs.create_org(&f.owner, "  Acme  ", &ctx()).await.expect("created");
    assert_eq!(org.name, "Acme", "names are trimmed");
    assert!(matches!(f.orgs.org_view(&f.member, &org.id).await, Err(OrgError::NotFound)), "404, never 403");
    let org = f.org_with_member().await;
    let err = f.orgs.invite(&f.member, &org, "x@example.com", OrgRole::Member, &ctx()).await;
    assert!(matches!(err, Err(OrgError::NotOwner)));
    assert!(matches!(f.orgs.set_org_two_factor(&f.member, &org, true, &ctx()).await, Err(OrgError::NotOwner)));
    assert!(matches!(f.orgs.create_org(&f.owner, "", &ctx()).await, Err(OrgError::InvalidName)));
}

#[tokio::test]
async fn an_organisation_always_keeps_an_owner() {
    let f = fixture();
    let org = f.org_with_member().await;
    let me = f.owner.account.id.as_str().to_owned();
    assert!(matches!(f.orgs.leave(&f.owner, &org, &ctx()).await, Err(OrgError::LastOwner)));
    let demote = f.orgs.set_member_role(&f.owner, &org, &me, OrgRole::Member, &ctx()).await;
    assert!(matches!(demote, Err(OrgError::LastOwner)));
    f.orgs.set_member_role(&f.owner, &org, "m1", OrgRole::Owner, &ctx()).await.expect("promote");
    f.orgs.set_member_role(&f.owner, &org, &me, OrgRole::Member, &ctx()).await.expect("then step down");
    assert_eq!(f.orgs.org_view(&f.member, &org).await.expect("view").my_role, OrgRole::Owner);
    let gone = f.orgs.remove_other(&f.member, &org, &AccountId::from_stored("nobody"), &ctx()).await;
    assert!(matches!(gone, Err(OrgError::NotFound)));
}

#[tokio::test]
async fn sec47_the_2fa_rule_binds_every_owner_first_then_shuts_out_members_without_it() {
    let f = fixture();
    let org = f.org_with_member().await;
    match f.orgs.set_org_two_factor(&f.owner, &org, true, &ctx()).await {
        Err(OrgError::OwnersWithoutTwoFactor { owners }) => assert_eq!(owners, vec!["owner@example.com".to_owned()]),
        other => panic!("{other:?}"),
    }
    f.store.set_factor(&f.owner.account.id, true);
    assert!(f.orgs.set_org_two_factor(&f.owner, &org, true, &ctx()).await.expect("on").required);
    assert!(matches!(f.orgs.org_view(&f.member, &org).await, Err(OrgError::TwoFactorRequired)));
    assert_eq!(f.orgs.orgs_requiring_two_factor(&f.member).await.expect("list").len(), 1);
    f.orgs.leave(&f.member, &org, &ctx()).await.expect("a member may always leave, even without 2FA");
    assert!(
        f.kit.audit.kinds().iter().any(|(k, ok)| k == AuditKind::PolicyChanged.as_str() && *ok),
        "the switch is audited"
    );
}

#[tokio::test]
async fn invitations_are_capped_per_owner_and_organisation() {
    let f = fixture();
    let org = f.orgs.create_org(&f.owner, "Acme", &ctx()).await.expect("created").id;
    for n in 0..INVITES_PER_HOUR {
        let to = format!("person{n}@example.com");
        f.orgs.invite(&f.owner, &org, &to, OrgRole::Member, &ctx()).await.expect("within the cap");
    }
    let over = f.orgs.invite(&f.owner, &org, "one-more@example.com", OrgRole::Member, &ctx()).await;
    assert!(matches!(over, Err(OrgError::Throttled { retry_after }) if retry_after > 0));
    assert_eq!(f.kit.mails.rows().len(), usize::try_from(INVITES_PER_HOUR).expect("small"), "no mail past the cap");
    f.kit.clock.advance(3600);
    f.orgs.invite(&f.owner, &org, "one-more@example.com", OrgRole::Member, &ctx()).await.expect("an hour on");
}

#[tokio::test]
async fn the_invitation_mail_reads_the_same_whether_or_not_the_address_has_an_account() {
    let f = fixture();
    let org = f.orgs.create_org(&f.owner, "Acme", &ctx()).await.expect("created").id;
    f.orgs.invite(&f.owner, &org, "member@example.com", OrgRole::Member, &ctx()).await.expect("has one");
    f.orgs.invite(&f.owner, &org, "stranger@example.com", OrgRole::Member, &ctx()).await.expect("has none");
    let texts = f.kit.texts();
    assert_eq!(texts[0].replace("member@", "X@"), texts[1].replace("stranger@", "X@").replace("member@", "X@"));
    assert!(texts[0].contains("https://id.example/orgs") && texts[0].contains("owner@example.com"));
    let bad = f.orgs.invite(&f.owner, &org, "not an address", OrgRole::Member, &ctx()).await;
    assert!(matches!(bad, Err(OrgError::InvalidEmail)));
}

#[tokio::test]
async fn an_invitation_is_used_once_by_the_verified_holder_of_its_address_only() {
    let f = fixture();
    let org = f.orgs.create_org(&f.owner, "Acme", &ctx()).await.expect("created").id;
    let inv = f.orgs.invite(&f.owner, &org, "member@example.com", OrgRole::Owner, &ctx()).await.expect("inv");
    let mut unverified = f.member.clone();
    unverified.account.email_verified_at = None;
    assert!(matches!(f.orgs.accept_invitation(&unverified, &inv.id, &ctx()).await, Err(OrgError::EmailUnverified)));
    assert!(matches!(f.orgs.decline_invitation(&unverified, &inv.id, &ctx()).await, Err(OrgError::EmailUnverified)));
    assert!(matches!(f.orgs.accept_invitation(&f.owner, &inv.id, &ctx()).await, Err(OrgError::NotFound)));
    let (joined, role) = f.orgs.accept_invitation(&f.member, &inv.id, &ctx()).await.expect("joins");
    assert_eq!((joined.id.as_str(), role), (org.as_str(), OrgRole::Owner), "with the invited role");
    assert!(matches!(f.orgs.accept_invitation(&f.member, &inv.id, &ctx()).await, Err(OrgError::NotFound)));
    let again = f.orgs.invite(&f.owner, &org, "member@example.com", OrgRole::Member, &ctx()).await;
    assert!(matches!(again, Err(OrgError::AlreadyMember)));
}

#[tokio::test]
async fn invitations_expire_owners_revoke_and_invitees_decline() {
    let f = fixture();
    let org = f.orgs.create_org(&f.owner, "Acme", &ctx()).await.expect("created").id;
    let old = f.orgs.invite(&f.owner, &org, "member@example.com", OrgRole::Member, &ctx()).await.expect("inv");
    f.kit.clock.advance(INVITATION_SECS);
    assert!(f.orgs.my_invitations(&f.member).await.expect("list").is_empty());
    assert!(matches!(f.orgs.accept_invitation(&f.member, &old.id, &ctx()).await, Err(OrgError::NotFound)));
    let renewed = f.orgs.invite(&f.owner, &org, "member@example.com", OrgRole::Member, &ctx()).await.expect("anew");
    assert_eq!(f.store.invitation_count(), 1, "renewing replaces the expired one");
    f.orgs.revoke_invitation(&f.owner, &org, &renewed.id, &ctx()).await.expect("revoked");
    assert!(matches!(f.orgs.revoke_invitation(&f.owner, &org, &renewed.id, &ctx()).await, Err(OrgError::NotFound)));
    let last = f.orgs.invite(&f.owner, &org, "member@example.com", OrgRole::Member, &ctx()).await.expect("inv");
    f.orgs.decline_invitation(&f.member, &last.id, &ctx()).await.expect("declined");
    assert!(f.orgs.org_invitations(&f.owner, &org).await.expect("list").is_empty());
}

#[tokio::test]
async fn turning_the_rule_on_counts_the_members_without_2fa_and_tells_each_once() {
    let f = fixture();
    let org = f.org_with_member().await;
    f.store.set_factor(&f.owner.account.id, true);
    let on = f.orgs.set_org_two_factor(&f.owner, &org, true, &ctx()).await.expect("on");
    assert_eq!((on.required, on.lacking, on.told), (true, 1, 1));
    let told = f.kit.subjects().into_iter().filter(|s| s.contains("now requires")).count();
    assert_eq!(told, 1, "the member without 2FA is mailed");
    assert!(f.kit.texts().iter().any(|t| t.contains("\"Acme\"")), "naming the organisation");
    let off = f.orgs.set_org_two_factor(&f.owner, &org, false, &ctx()).await.expect("off");
    assert_eq!((off.required, off.lacking, off.told), (false, 1, 0));
    let again = f.orgs.set_org_two_factor(&f.owner, &org, true, &ctx()).await.expect("on again");
    assert_eq!((again.lacking, again.told), (1, 0), "told once, however often the switch is turned on");
}

#[tokio::test]
async fn owners_pressing_the_switch_together_send_one_mail_per_member() {
    let f = fixture();
    let org = f.org_with_member().await;
    f.store.set_factor(&f.owner.account.id, true);
    let from = ctx();
    let presses = (0..50).map(|_| f.orgs.set_org_two_factor(&f.owner, &org, true, &from));
    let told: usize = futures::future::join_all(presses).await.into_iter().map(|r| r.expect("on").told).sum();
    assert_eq!(told, 1);
    assert_eq!(f.kit.subjects().iter().filter(|s| s.contains("now requires")).count(), 1);
}
