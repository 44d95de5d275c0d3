//! Organisation membership by invitation (issue 14): an owner invites an
//! e-mail address and learns nothing about whether it has an account; the
//! invitee accepts or declines; invitations expire after 7 days, can be
//! revoked, wait for an account created later, and are capped per owner
//! and organisation — under a burst too. A member may always leave, also
//! from an enrolment-only session. Only a verified address answers an
//! invitation (sign-up does not prove the address), and expired invitations
//! are swept.

use std::time::{Duration, Instant};

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use twostep_domain::policy::orgs::{INVITATION_SECS, INVITES_PER_HOUR};
use twostep_domain::time::Timestamp;
use twostep_testkit::{Db, Resp, TestApp, User, both_backends, csrf_of, each_backend};

use crate::burst::{burst, count, tally};

both_backends!(
    an_invite_answers_alike_whether_or_not_the_address_has_an_account,
    the_invite_cap_holds_under_a_burst_of_50,
    the_invite_cap_holds_under_a_burst_of_200,
    expired_invitations_are_swept_a_day_after_they_expire,
);
// Invitees verify their address (mailed at sign-up) before they answer.
each_backend!(
    both_known_and_unknown_addresses_are_mailed,
    accept_decline_and_revoke,
    only_the_addressee_may_answer_and_only_owners_may_invite_or_revoke,
    an_unverified_account_sees_its_invitations_but_answers_only_once_verified,
    an_invitation_answers_to_the_current_address_only,
    invitations_expire_after_seven_days,
    an_invitation_waits_for_the_account_created_with_its_address,
    concurrent_accepts_make_one_membership,
    accepting_under_a_two_factor_rule_puts_the_member_under_it,
    a_member_leaves_from_an_enrolment_only_session,
);

async fn create_org(app: &TestApp, owner: &User, name: &str) -> String {
    app.post("/api/v1/orgs", &json!({"name": name}), Some(&owner.token)).await.assert_status(201).str("id")
}

async fn invite(app: &TestApp, owner: &User, org: &str, email: &str, role: &str) -> Resp {
    app.post(&format!("/api/v1/orgs/{org}/members"), &json!({"email": email, "role": role}), Some(&owner.token)).await
}

async fn accept(app: &TestApp, user: &User, id: &str) -> Resp {
    app.post(&format!("/api/v1/me/invitations/{id}/accept"), &json!({}), Some(&user.token)).await
}

async fn decline(app: &TestApp, user: &User, id: &str) -> Resp {
    app.post(&format!("/api/v1/me/invitations/{id}/decline"), &json!({}), Some(&user.token)).await
}

async fn my_invitations(app: &TestApp, user: &User) -> Vec<Value> {
    app.get("/api/v1/me/invitations", Some(&user.token)).await.assert_status(200).body.as_array().expect("list").clone()
}

async fn pending(app: &TestApp, owner: &User, org: &str) -> Vec<Value> {
    let r = app.get(&format!("/api/v1/orgs/{org}/invitations"), Some(&owner.token)).await.assert_status(200);
    r.body.as_array().expect("list").clone()
}

async fn member_count(app: &TestApp, owner: &User, org: &str) -> usize {
    let r = app.get(&format!("/api/v1/orgs/{org}"), Some(&owner.token)).await.assert_status(200);
    r.body["members"].as_array().expect("members").len()
}

async fn events(app: &TestApp, user: &User) -> Vec<String> {
    let log = app.get("/api/v1/me/security-log?limit=100", Some(&user.token)).await.assert_status(200);
    log.body.as_array().expect("log").iter().filter_map(|e| e["event"].as_str().map(str::to_owned)).collect()
}

/// A fresh session after the fake clock jumped past the idle timeout.
async fn relogin(app: &TestApp, user: &mut User) {
    user.token = app.login(&user.email, &user.password).await.assert_status(200).str("session_token");
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
    k.sort();
    k
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The penetration test's finding: no account oracle. Same status, same
/// body shape and the same timing class for an address with an account
/// and one without (medians of alternating requests).
async fn an_invite_answers_alike_whether_or_not_the_address_has_an_account(app: TestApp) {
    let owner = app.user().await;
    let known = app.user().await;
    let unknown = format!("nobody-{}@example.com", uuid::Uuid::new_v4().simple());
    // Each organisation has its own cap: a fresh one every nine rounds.
    let mut orgs = Vec::new();
    for i in 0..4 {
        orgs.push(create_org(&app, &owner, &format!("Acme {i}")).await);
    }
    let org = orgs[0].clone();

    let a = invite(&app, &owner, &org, &known.email, "member").await.assert_status(202);
    let b = invite(&app, &owner, &org, &unknown, "member").await.assert_status(202);
    assert_eq!(keys(&a.body), ["email", "invitation_id", "role", "status"]);
    assert_eq!(keys(&a.body), keys(&b.body));
    assert_eq!((a.body["status"].as_str(), b.body["status"].as_str()), (Some("pending"), Some("pending")));
    assert_eq!(a.str("email"), known.email);
    assert_eq!(b.str("email"), unknown);
    assert_ne!(a.str("invitation_id"), b.str("invitation_id"));

    // Alternating, so drift on a busy machine hits both alike.
    let (mut with_account, mut without) = (Vec::new(), Vec::new());
    for i in 0..30 {
        let org = &orgs[(i + 1) / 9];
        let t = Instant::now();
        invite(&app, &owner, org, &known.email, "member").await.assert_status(202);
        with_account.push(t.elapsed());
        let t = Instant::now();
        invite(&app, &owner, org, &unknown, "member").await.assert_status(202);
        without.push(t.elapsed());
    }
    let (k, u) = (median(with_account), median(without));
    let slower = k.max(u);
    assert!(
        k.abs_diff(u) <= slower / 2 + Duration::from_millis(5),
        "timing tells the addresses apart: median {k:?} with an account, {u:?} without"
    );
}

async fn both_known_and_unknown_addresses_are_mailed(db: Db) {
    let (app, sink) = TestApp::spawn_with_mail(db).await;
    let owner = app.user().await;
    let known = app.user().await;
    let unknown = format!("nobody-{}@example.com", uuid::Uuid::new_v4().simple());
    let org = create_org(&app, &owner, "Initech <Labs>").await;
    invite(&app, &owner, &org, &known.email, "member").await.assert_status(202);
    invite(&app, &owner, &org, &unknown, "owner").await.assert_status(202);
    let mails = loop {
        let found = sink.with_subject("Invitation to join Initech <Labs>");
        if found.len() >= 2 {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let to = |addr: &str| mails.iter().find(|m| m["to"] == json!([addr])).expect("a mail to each address").clone();
    let (k, u) = (to(&known.email), to(&unknown));
    let (kt, ut) = (k["text"].as_str().expect("text"), u["text"].as_str().expect("text"));
    // One text for both: the mail does not tell whether an account exists.
    assert_eq!(kt.replace("as member", "as owner"), ut);
    assert!(kt.contains(&owner.email) && kt.contains("/signup") && kt.contains("/orgs"), "{kt}");
    assert!(!u["html"].as_str().expect("html").contains("<Labs>"), "the name is escaped in HTML");
}

async fn accept_decline_and_revoke(db: Db) {
    let (app, sink) = TestApp::spawn_with_mail(db).await;
    let owner = app.user().await;
    let member = app.verified_user(&sink).await;
    let decliner = app.verified_user(&sink).await;
    let revoked = app.verified_user(&sink).await;
    let org = create_org(&app, &owner, "Globex").await;

    let sent = invite(&app, &owner, &org, &member.email, "member").await.assert_status(202);
    let id = sent.str("invitation_id");
    // Nobody becomes a member without accepting.
    app.get(&format!("/api/v1/orgs/{org}"), Some(&member.token)).await.assert_error(404, "not_found");
    assert_eq!(member_count(&app, &owner, &org).await, 1);

    let mine = my_invitations(&app, &member).await;
    let expires = Timestamp::from_secs(app.clock.secs()).plus_secs(INVITATION_SECS).rfc3339();
    assert_eq!(
        mine,
        [json!({"invitation_id": id, "org": {"id": org, "name": "Globex"}, "role": "member",
                "invited_by": owner.email, "expires_at": expires, "can_accept": true})]
    );
    let listed = pending(&app, &owner, &org).await;
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0]["invitation_id"].as_str(), listed[0]["email"].as_str()), (Some(&*id), Some(&*member.email)));

    let joined = accept(&app, &member, &id).await.assert_status(201);
    assert_eq!(
        joined.body,
        json!({"id": org, "name": "Globex", "require_two_factor": false, "refuse_synced_passkeys": false, "role": "member"})
    );
    app.get(&format!("/api/v1/orgs/{org}"), Some(&member.token)).await.assert_status(200);
    assert!(my_invitations(&app, &member).await.is_empty());
    assert!(pending(&app, &owner, &org).await.is_empty());

    // Declining: no membership, and the invitation is gone.
    let d = invite(&app, &owner, &org, &decliner.email, "owner").await.assert_status(202).str("invitation_id");
    decline(&app, &decliner, &d).await.assert_status(204);
    assert!(my_invitations(&app, &decliner).await.is_empty());
    accept(&app, &decliner, &d).await.assert_error(404, "not_found");
    decline(&app, &decliner, &d).await.assert_error(404, "not_found");
    app.get(&format!("/api/v1/orgs/{org}"), Some(&decliner.token)).await.assert_error(404, "not_found");

    // Revoking: the invitee can no longer accept.
    let r = invite(&app, &owner, &org, &revoked.email, "member").await.assert_status(202).str("invitation_id");
    assert_eq!(my_invitations(&app, &revoked).await.len(), 1);
    app.delete(&format!("/api/v1/orgs/{org}/invitations/{r}"), Some(&owner.token)).await.assert_status(204);
    assert!(my_invitations(&app, &revoked).await.is_empty());
    accept(&app, &revoked, &r).await.assert_error(404, "not_found");
    app.delete(&format!("/api/v1/orgs/{org}/invitations/{r}"), Some(&owner.token)).await.assert_error(404, "not_found");
    assert_eq!(member_count(&app, &owner, &org).await, 2);

    // Inviting an address again renews its one invitation.
    let first = invite(&app, &owner, &org, &revoked.email, "member").await.assert_status(202).str("invitation_id");
    let second = invite(&app, &owner, &org, &revoked.email, "owner").await.assert_status(202).str("invitation_id");
    let mine = my_invitations(&app, &revoked).await;
    assert_eq!(mine.len(), 1);
    assert_eq!((mine[0]["invitation_id"].as_str(), mine[0]["role"].as_str()), (Some(&*second), Some("owner")));
    accept(&app, &revoked, &first).await.assert_error(404, "not_found");
    accept(&app, &revoked, &second).await.assert_status(201);
    // Already a member: said so, as the owner sees the member list anyway.
    invite(&app, &owner, &org, &revoked.email, "member").await.assert_error(409, "already_member");

    // Every step is in the audit log of whoever took it.
    let by_owner = events(&app, &owner).await;
    for e in ["org_invitation_sent", "org_invitation_revoked"] {
        assert!(by_owner.iter().any(|x| x == e), "{e} missing from {by_owner:?}");
    }
    assert!(events(&app, &member).await.iter().any(|x| x == "org_invitation_accepted"));
    assert!(events(&app, &decliner).await.iter().any(|x| x == "org_invitation_declined"));
}

async fn only_the_addressee_may_answer_and_only_owners_may_invite_or_revoke(db: Db) {
    let (app, sink) = TestApp::spawn_with_mail(db).await;
    let owner = app.user().await;
    let member = app.verified_user(&sink).await;
    let invitee = app.verified_user(&sink).await;
    let stranger = app.verified_user(&sink).await;
    let org = create_org(&app, &owner, "Hooli").await;
    crate::orgs::join(&app, &owner, &org, &member, "member").await;
    let id = invite(&app, &owner, &org, &invitee.email, "member").await.assert_status(202).str("invitation_id");

    // Someone else's invitation does not exist for them (SEC-62: 404).
    accept(&app, &stranger, &id).await.assert_error(404, "not_found");
    decline(&app, &stranger, &id).await.assert_error(404, "not_found");
    accept(&app, &member, &id).await.assert_error(404, "not_found");
    accept(&app, &invitee, "no-such-invitation").await.assert_error(404, "not_found");
    // An unverified account is refused before any lookup: the same 403
    // for any id, so it learns nothing about other people's invitations.
    let unverified = app.user().await;
    accept(&app, &unverified, &id).await.assert_error(403, "email_unverified");
    accept(&app, &unverified, "no-such-invitation").await.assert_error(403, "email_unverified");
    assert!(my_invitations(&app, &stranger).await.is_empty());
    assert_eq!(my_invitations(&app, &invitee).await.len(), 1, "still pending for its addressee");

    // A member may neither invite, list nor revoke; a stranger does not see the organisation.
    invite(&app, &member, &org, &stranger.email, "member").await.assert_error(403, "forbidden");
    invite(&app, &member, &org, &stranger.email, "owner").await.assert_error(403, "forbidden");
    app.get(&format!("/api/v1/orgs/{org}/invitations"), Some(&member.token)).await.assert_error(403, "forbidden");
    app.delete(&format!("/api/v1/orgs/{org}/invitations/{id}"), Some(&member.token))
        .await
        .assert_error(403, "forbidden");
    invite(&app, &stranger, &org, &stranger.email, "owner").await.assert_error(404, "not_found");
    app.delete(&format!("/api/v1/orgs/{org}/invitations/{id}"), Some(&stranger.token))
        .await
        .assert_error(404, "not_found");
    // Another organisation's owner cannot revoke it through their own.
    let other = create_org(&app, &stranger, "Other").await;
    app.delete(&format!("/api/v1/orgs/{other}/invitations/{id}"), Some(&stranger.token))
        .await
        .assert_error(404, "not_found");
    // Bad input gets a clear error.
    invite(&app, &owner, &org, "not an address", "member").await.assert_error(400, "invalid_email");
    invite(&app, &owner, &org, &stranger.email, "boss").await.assert_error(400, "invalid_request");
    app.post(&format!("/api/v1/orgs/{org}/members"), &json!({"email": 5}), Some(&owner.token))
        .await
        .assert_error(400, "invalid_request");
    assert_eq!(my_invitations(&app, &invitee).await.len(), 1);
    accept(&app, &invitee, &id).await.assert_status(201);
}

/// Posts a page form as a browser on the server's own origin would.
async fn post_form(app: &TestApp, cookie: &str, path: &str, csrf: &str) -> (u16, String) {
    let r = app
        .http
        .post(format!("{}{path}", app.url))
        .header(COOKIE, cookie)
        .header("origin", &app.url)
        .form(&[("csrf", csrf)])
        .send()
        .await
        .expect("send");
    (r.status().as_u16(), r.text().await.expect("html"))
}

/// The hole this closes: sign-up does not prove the address, so anyone may
/// hold an account with an invitee's address. Such an account sees the
/// invitation but neither accepts nor declines it, by the API or the page,
/// and nothing changes; once the address is verified the same invitation
/// is accepted.
async fn an_unverified_account_sees_its_invitations_but_answers_only_once_verified(db: Db) {
    let (app, sink) = TestApp::spawn_with_mail(db).await;
    let owner = app.user().await;
    let holder = app.user().await;
    let org = create_org(&app, &owner, "Massive Dynamic").await;
    let id = invite(&app, &owner, &org, &holder.email, "owner").await.assert_status(202).str("invitation_id");

    // Listed in the usual shape, one field added: it cannot be accepted yet.
    let mine = my_invitations(&app, &holder).await;
    assert_eq!(mine.len(), 1);
    assert_eq!(keys(&mine[0]), ["can_accept", "expires_at", "invitation_id", "invited_by", "org", "role"]);
    assert_eq!((mine[0]["invitation_id"].as_str(), &mine[0]["can_accept"]), (Some(&*id), &json!(false)));

    let refused = accept(&app, &holder, &id).await.assert_error(403, "email_unverified");
    let message = refused.body["error"]["message"].as_str().expect("message");
    assert!(message.contains("verify your e-mail address"), "{message}");
    decline(&app, &holder, &id).await.assert_error(403, "email_unverified");
    // Nothing changed: no membership, the invitation pending on both sides.
    app.get(&format!("/api/v1/orgs/{org}"), Some(&holder.token)).await.assert_error(404, "not_found");
    assert_eq!(member_count(&app, &owner, &org).await, 1);
    assert_eq!(pending(&app, &owner, &org).await.len(), 1);
    assert_eq!(my_invitations(&app, &holder).await.len(), 1);
    let log = app.get("/api/v1/me/security-log?limit=100", Some(&holder.token)).await.assert_status(200);
    let refusals: Vec<(&str, bool)> = log
        .body
        .as_array()
        .expect("log")
        .iter()
        .filter(|e| e["details"] == "e-mail address not verified")
        .map(|e| (e["event"].as_str().expect("event"), e["success"].as_bool().expect("success")))
        .collect();
    assert_eq!(refusals, [("org_invitation_declined", false), ("org_invitation_accepted", false)]);

    // The page shows it with a way to verify instead of the buttons; a
    // posted form meets the same refusal, as a message.
    let cookie = format!("twostep_session={}", holder.token);
    let page = app.http.get(format!("{}/orgs", app.url)).header(COOKIE, &cookie).send().await.expect("page");
    let html = page.text().await.expect("html");
    assert!(html.contains("Massive Dynamic") && html.contains("data-testid=\"invitation-unverified\""), "{html}");
    assert!(html.contains("href=\"/security#email-verification\""), "{html}");
    assert!(!html.contains(&format!("action=\"/invitations/{id}/accept\"")), "no Accept button: {html}");
    let csrf = csrf_of(&html);
    for action in ["accept", "decline"] {
        let (status, html) = post_form(&app, &cookie, &format!("/invitations/{id}/{action}"), &csrf).await;
        assert_eq!(status, 403, "{action}: {html}");
        assert!(html.contains("Verify your e-mail address first"), "{action}: {html}");
    }
    assert_eq!(member_count(&app, &owner, &org).await, 1);

    // Verified: the same invitation now answers, from the page too.
    app.verify_email(&sink, &holder).await;
    assert_eq!(my_invitations(&app, &holder).await[0]["can_accept"], true);
    let page = app.http.get(format!("{}/orgs", app.url)).header(COOKIE, &cookie).send().await.expect("page");
    let html = page.text().await.expect("html");
    assert!(html.contains(&format!("action=\"/invitations/{id}/accept\"")), "{html}");
    assert!(!html.contains("invitation-unverified"), "{html}");
    let joined = accept(&app, &holder, &id).await.assert_status(201);
    assert_eq!(joined.body["role"], "owner");
    app.get(&format!("/api/v1/orgs/{org}"), Some(&holder.token)).await.assert_status(200);
    assert_eq!(member_count(&app, &owner, &org).await, 2);
}

/// There is no e-mail change yet; the account row is edited as one would
/// edit it. An invitation belongs to an address, not to whichever account
/// once had it: after a change, the old address's invitation is neither
/// listed nor accepted, and the new address must be verified to answer.
async fn an_invitation_answers_to_the_current_address_only(db: Db) {
    let (app, sink) = TestApp::spawn_with_mail(db).await;
    let owner = app.user().await;
    let holder = app.verified_user(&sink).await;
    let org = create_org(&app, &owner, "Aperture").await;
    let old = invite(&app, &owner, &org, &holder.email, "member").await.assert_status(202).str("invitation_id");
    let new_address = format!("moved-{}@example.com", uuid::Uuid::new_v4().simple());
    let mut db = app.raw().await;
    sqlx::query("UPDATE accounts SET email = $1 WHERE email = $2")
        .bind(&new_address)
        .bind(&holder.email)
        .execute(&mut db)
        .await
        .expect("change the address");
    // A hand edit announces nothing: servers see it once their kept copy
    // of the session is `CACHE_SECS` old.
    app.clock.advance(twostep_domain::sessions::cache::CACHE_SECS);

    assert!(my_invitations(&app, &holder).await.is_empty(), "the old address's invitation is not listed");
    accept(&app, &holder, &old).await.assert_error(404, "not_found");
    decline(&app, &holder, &old).await.assert_error(404, "not_found");
    let new = invite(&app, &owner, &org, &new_address, "member").await.assert_status(202).str("invitation_id");
    assert_eq!(my_invitations(&app, &holder).await.len(), 1);

    // A changed address starts unverified: the new invitation waits for that.
    sqlx::query("UPDATE accounts SET email_verified_at = NULL WHERE email = $1")
        .bind(&new_address)
        .execute(&mut db)
        .await
        .expect("unverify");
    // A hand edit announces nothing: servers see it once their kept copy
    // of the session is `CACHE_SECS` old.
    app.clock.advance(twostep_domain::sessions::cache::CACHE_SECS);
    assert_eq!(my_invitations(&app, &holder).await[0]["can_accept"], false);
    accept(&app, &holder, &new).await.assert_error(403, "email_unverified");
    assert_eq!(member_count(&app, &owner, &org).await, 1);
    sqlx::query("UPDATE accounts SET email_verified_at = 1 WHERE email = $1")
        .bind(&new_address)
        .execute(&mut db)
        .await
        .expect("verify");
    // A hand edit announces nothing: servers see it once their kept copy
    // of the session is `CACHE_SECS` old.
    app.clock.advance(twostep_domain::sessions::cache::CACHE_SECS);
    accept(&app, &holder, &new).await.assert_status(201);
    assert_eq!(member_count(&app, &owner, &org).await, 2);
    assert_eq!(pending(&app, &owner, &org).await.len(), 1, "the old address's invitation is still its own");
}

async fn invitations_expire_after_seven_days(db: Db) {
    let (app, sink) = TestApp::spawn_with_mail(db).await;
    let mut owner = app.user().await;
    let mut invitee = app.verified_user(&sink).await;
    let org = create_org(&app, &owner, "Umbrella").await;
    let id = invite(&app, &owner, &org, &invitee.email, "member").await.assert_status(202).str("invitation_id");
    app.clock.advance(INVITATION_SECS - 1);
    relogin(&app, &mut owner).await;
    relogin(&app, &mut invitee).await;
    assert_eq!(my_invitations(&app, &invitee).await.len(), 1, "still open a second before");
    app.clock.advance(1);
    assert!(my_invitations(&app, &invitee).await.is_empty());
    assert!(pending(&app, &owner, &org).await.is_empty());
    accept(&app, &invitee, &id).await.assert_error(404, "not_found");
    decline(&app, &invitee, &id).await.assert_error(404, "not_found");
    // A new invitation works again.
    let again = invite(&app, &owner, &org, &invitee.email, "member").await.assert_status(202).str("invitation_id");
    assert_ne!(again, id);
    accept(&app, &invitee, &again).await.assert_status(201);
}

async fn an_invitation_waits_for_the_account_created_with_its_address(db: Db) {
    let (app, sink) = TestApp::spawn_with_mail(db).await;
    let owner = app.user().await;
    let org = create_org(&app, &owner, "Stark").await;
    let local = format!("New.Person-{}", uuid::Uuid::new_v4().simple());
    let sent = invite(&app, &owner, &org, &format!("  {local}@Example.COM "), "owner").await.assert_status(202);
    let normalised = format!("{}@example.com", local.to_lowercase());
    assert_eq!(sent.str("email"), normalised);

    // The account is created later, with the address in yet another case.
    let typed = format!("{}@EXAMPLE.com", local.to_uppercase());
    let password = "correct horse battery staple";
    app.post("/api/v1/accounts", &json!({"email": typed, "password": password}), None).await.assert_status(201);
    let token = app.login(&normalised, password).await.assert_status(200).str("session_token");
    let newcomer = User {
        email: normalised,
        password: password.to_owned(),
        token,
        secret: Vec::new(),
        authenticator_id: String::new(),
        recovery_codes: Vec::new(),
    };
    let mine = my_invitations(&app, &newcomer).await;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["invitation_id"].as_str(), Some(&*sent.str("invitation_id")));
    assert_eq!(mine[0]["role"], "owner");
    // The verification mail goes to the normalised address too.
    app.verify_email(&sink, &newcomer).await;
    accept(&app, &newcomer, &sent.str("invitation_id")).await.assert_status(201);
    let shown = app.get(&format!("/api/v1/orgs/{org}"), Some(&newcomer.token)).await.assert_status(200);
    assert_eq!(shown.body["members"].as_array().expect("members").len(), 2);
}

async fn concurrent_accepts_make_one_membership(db: Db) {
    let (app, sink) = TestApp::spawn_with_mail(db).await;
    let owner = app.user().await;
    let invitee = app.verified_user(&sink).await;
    let org = create_org(&app, &owner, "Wayne").await;
    let id = invite(&app, &owner, &org, &invitee.email, "member").await.assert_status(202).str("invitation_id");
    let bases = app.instances().await;
    let token = invitee.token.clone();
    let answers = burst(&bases, 20, move |_, client, base| {
        client.post(format!("{base}/api/v1/me/invitations/{id}/accept")).bearer_auth(&token).json(&json!({}))
    })
    .await;
    assert_eq!(count(&answers, 201), 1, "{:?}", tally(&answers));
    assert_eq!(count(&answers, 404), 19, "{:?}", tally(&answers));
    assert_eq!(member_count(&app, &owner, &org).await, 2);
}

async fn accepting_under_a_two_factor_rule_puts_the_member_under_it(db: Db) {
    let (app, sink) = TestApp::spawn_with_mail(db).await;
    let owner = app.user_with_totp().await;
    let invitee = app.verified_user(&sink).await;
    let org = create_org(&app, &owner, "Cyberdyne").await;
    app.put(&format!("/api/v1/orgs/{org}/two-factor-policy"), &json!({"require_two_factor": true}), Some(&owner.token))
        .await
        .assert_status(200);
    let id = invite(&app, &owner, &org, &invitee.email, "member").await.assert_status(202).str("invitation_id");
    // Before accepting, the rule does not touch them.
    assert_eq!(app.login(&invitee.email, &invitee.password).await.str("status"), "authenticated");
    let joined = accept(&app, &invitee, &id).await.assert_status(201);
    assert_eq!(joined.body["require_two_factor"], true);
    // As any member without 2FA: the organisation is closed, sign-in asks for set-up.
    app.get(&format!("/api/v1/orgs/{org}"), Some(&invitee.token)).await.assert_error(403, "two_factor_required");
    assert_eq!(app.login(&invitee.email, &invitee.password).await.str("status"), "enrollment_required");
    let all = app.get(&format!("/api/v1/orgs/{org}?two_factor=false"), Some(&owner.token)).await.assert_status(200);
    assert_eq!(all.body["members"][0]["email"], invitee.email.as_str());
}

/// The finding's second half: a victim held in an enrolment-only session
/// could not leave. Leaving is allowed where set-up is.
async fn a_member_leaves_from_an_enrolment_only_session(db: Db) {
    let (app, sink) = TestApp::spawn_with_mail(db).await;
    let owner = app.user_with_totp().await;
    let member = app.verified_user(&sink).await;
    let other = app.verified_user(&sink).await;
    let org = create_org(&app, &owner, "Tyrell").await;
    crate::orgs::join(&app, &owner, &org, &member, "member").await;
    crate::orgs::join(&app, &owner, &org, &other, "member").await;
    app.put(&format!("/api/v1/orgs/{org}/two-factor-policy"), &json!({"require_two_factor": true}), Some(&owner.token))
        .await
        .assert_status(200);
    let login = app.login(&member.email, &member.password).await.assert_status(200);
    assert_eq!(login.str("status"), "enrollment_required");
    let token = login.str("session_token");
    let me = app.get("/api/v1/me", Some(&token)).await.assert_status(200).str("id");
    let other_id = app.get("/api/v1/me", Some(&other.token)).await.str("id");
    app.get("/api/v1/me/sessions", Some(&token)).await.assert_error(403, "enrollment_required");

    // It lists its organisations, may not remove anyone else, but may leave.
    let orgs = app.get("/api/v1/orgs", Some(&token)).await.assert_status(200);
    assert_eq!(orgs.body[0]["id"], org.as_str());
    app.delete(&format!("/api/v1/orgs/{org}/members/{other_id}"), Some(&token))
        .await
        .assert_error(403, "enrollment_required");
    let left = app.delete(&format!("/api/v1/orgs/{org}/members/{me}"), Some(&token)).await.assert_status(200);
    // Nothing requires 2FA of the account any more: the enrolment-only
    // session ends for a full one under a new token (SEC-52).
    let full = left.str("session_token");
    assert_ne!(full, token);
    app.get("/api/v1/me", Some(&token)).await.assert_error(401, "unauthenticated");
    app.get("/api/v1/me/sessions", Some(&full)).await.assert_status(200);
    app.get(&format!("/api/v1/orgs/{org}"), Some(&full)).await.assert_error(404, "not_found");
    assert_eq!(app.login(&member.email, &member.password).await.str("status"), "authenticated");
    assert_eq!(member_count(&app, &owner, &org).await, 2);
    assert!(events(&app, &member).await.iter().any(|e| e == "org_member_removed"));

    // In the browser: the landing page offers "Leave", which asks first
    // (issue 20); leaving renews the cookie.
    let login = app.login(&other.email, &other.password).await.assert_status(200);
    assert_eq!(login.str("status"), "enrollment_required");
    let cookie = format!("twostep_session={}", login.str("session_token"));
    let page = |path: &str| app.http.get(format!("{}{path}", app.url)).header(COOKIE, cookie.clone()).send();
    let landing = page("/orgs").await.expect("page");
    assert_eq!(landing.headers()[LOCATION], "/security/two-factor/required");
    let html = page("/security/two-factor/required").await.expect("page").text().await.expect("html");
    assert!(html.contains(&format!("href=\"/orgs/{org}/leave\"")) && html.contains("Tyrell"), "{html}");
    let html = page(&format!("/orgs/{org}/leave")).await.expect("page").text().await.expect("html");
    assert!(html.contains("Leave Tyrell?") && html.contains(&format!("action=\"/orgs/{org}/leave\"")), "{html}");
    let csrf = twostep_testkit::csrf_of(&html);
    let left = app
        .http
        .post(format!("{}/orgs/{org}/leave", app.url))
        .header(COOKIE, &cookie)
        .header("origin", &app.url)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("leave");
    assert_eq!(left.status().as_u16(), 303);
    assert_eq!(left.headers()[LOCATION], "/orgs?notice=left");
    let renewed = left.headers()[SET_COOKIE].to_str().expect("cookie").split(';').next().expect("pair").to_owned();
    assert_ne!(renewed, cookie, "a privilege change gets a new session id");
    let list = app.http.get(format!("{}/orgs", app.url)).header(COOKIE, renewed).send().await.expect("page");
    assert_eq!(list.status().as_u16(), 200);
    assert_eq!(member_count(&app, &owner, &org).await, 1);
}

/// The invitations stored, by address.
async fn stored_invitations(app: &TestApp) -> Vec<String> {
    let mut db = app.raw().await;
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT email FROM org_invitations ORDER BY email").fetch_all(&mut db).await.expect("query");
    rows.into_iter().map(|(e,)| e).collect()
}

/// The worker's hourly sweep deletes invitations a day after they expired,
/// and only those.
async fn expired_invitations_are_swept_a_day_after_they_expire(app: TestApp) {
    let mut owner = app.user().await;
    // One organisation each: inviting also clears the organisation's own expired ones.
    let (a, b, c) =
        (create_org(&app, &owner, "A").await, create_org(&app, &owner, "B").await, create_org(&app, &owner, "C").await);
    invite(&app, &owner, &a, "old@example.com", "member").await.assert_status(202);
    app.clock.advance(24 * 3600);
    relogin(&app, &mut owner).await;
    invite(&app, &owner, &b, "recent@example.com", "member").await.assert_status(202);
    app.clock.advance(3600);
    relogin(&app, &mut owner).await;
    invite(&app, &owner, &c, "open@example.com", "member").await.assert_status(202);
    assert_eq!(stored_invitations(&app).await, ["old@example.com", "open@example.com", "recent@example.com"]);

    // A minute before "open" expires: "old" expired a day and an hour ago,
    // "recent" an hour ago. The jump is past the sweep's hourly period.
    app.clock.advance(INVITATION_SECS - 60);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut left = stored_invitations(&app).await;
    while left.len() == 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = stored_invitations(&app).await;
    }
    assert_eq!(left, ["open@example.com", "recent@example.com"]);
    relogin(&app, &mut owner).await;
    let open = pending(&app, &owner, &c).await;
    assert_eq!(open.len(), 1);
    assert!(pending(&app, &owner, &b).await.is_empty(), "expired, so not listed, though not yet swept");
}

/// The invite cap holds when the requests arrive together (one owner, one
/// organisation, two instances on PostgreSQL): the decision and the count
/// are one conditional upsert.
async fn invite_burst(app: &TestApp, n: usize) {
    let owner = app.user().await;
    let org = create_org(app, &owner, "Burst").await;
    let bases = app.instances().await;
    let token = owner.token.clone();
    let answers = burst(&bases, n, move |i, client, base| {
        client
            .post(format!("{base}/api/v1/orgs/{org}/members"))
            .bearer_auth(&token)
            .json(&json!({"email": format!("burst-{i}@example.com"), "role": "member"}))
    })
    .await;
    let cap = usize::try_from(INVITES_PER_HOUR).expect("cap");
    assert_eq!(count(&answers, 202), cap, "{:?}", tally(&answers));
    assert_eq!(count(&answers, 429), n - cap, "{:?}", tally(&answers));
    for r in answers.iter().filter(|r| r.status.as_u16() == 429) {
        assert_eq!(r.body["error"]["code"], "too_many_requests");
        let after: i64 = r.header("retry-after").parse().expect("Retry-After");
        assert!((1..=3600).contains(&after), "{after}");
    }
}

async fn the_invite_cap_holds_under_a_burst_of_50(app: TestApp) {
    invite_burst(&app, 50).await;
    // Another owner was never capped; an hour on, a capped one may invite again.
    let mut owner = app.user().await;
    let org = create_org(&app, &owner, "Later").await;
    for i in 0..INVITES_PER_HOUR {
        invite(&app, &owner, &org, &format!("n{i}@example.com"), "member").await.assert_status(202);
    }
    invite(&app, &owner, &org, "one-more@example.com", "member").await.assert_error(429, "too_many_requests");
    app.clock.advance(3600);
    relogin(&app, &mut owner).await;
    invite(&app, &owner, &org, "one-more@example.com", "member").await.assert_status(202);
}

async fn the_invite_cap_holds_under_a_burst_of_200(app: TestApp) {
    invite_burst(&app, 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_invitation_routes_are_in_the_openapi_document() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let doc = app.get("/api/openapi.json", None).await.assert_status(200).body;
    let paths = &doc["paths"];
    let invite = &paths["/api/v1/orgs/{id}/members"]["post"]["responses"];
    assert!(invite.get("202").is_some() && invite.get("429").is_some(), "{invite}");
    assert!(invite.get("201").is_none(), "nobody is added directly any more");
    for (path, method, status) in [
        ("/api/v1/orgs/{id}/invitations", "get", "200"),
        ("/api/v1/orgs/{id}/invitations/{invitation_id}", "delete", "204"),
        ("/api/v1/me/invitations", "get", "200"),
        ("/api/v1/me/invitations/{id}/accept", "post", "201"),
        ("/api/v1/me/invitations/{id}/decline", "post", "204"),
    ] {
        assert!(paths[path][method]["responses"].get(status).is_some(), "{method} {path} {status} missing");
    }
    for answer in ["accept", "decline"] {
        let refused = &paths[format!("/api/v1/me/invitations/{{id}}/{answer}").as_str()]["post"]["responses"]["403"];
        let said = refused["description"].as_str().unwrap_or_default();
        assert!(said.contains("email_unverified"), "{answer}: {refused}");
    }
    let listed = &doc["components"]["schemas"]["MyInvitation"]["properties"];
    assert!(listed.get("can_accept").is_some(), "{listed}");
    for schema in ["InviteRequest", "InvitationSent", "PendingInvitation", "MyInvitation", "InvitingOrg"] {
        assert!(doc["components"]["schemas"].get(schema).is_some(), "schema {schema} missing");
    }
}

/// The invitee's Accept and Decline buttons are CSRF-checked forms like
/// every other (SEC-55): a forged post changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_accept_and_decline_forms_are_refused() {
    let (app, sink) = TestApp::spawn_with_mail(Db::Sqlite).await;
    let owner = app.user().await;
    let invitee = app.verified_user(&sink).await;
    let org = create_org(&app, &owner, "Soylent").await;
    let id = invite(&app, &owner, &org, &invitee.email, "member").await.assert_status(202).str("invitation_id");
    let cookie = format!("twostep_session={}", invitee.token);
    for action in ["accept", "decline"] {
        let forged = app
            .http
            .post(format!("{}/invitations/{id}/{action}", app.url))
            .header(COOKIE, &cookie)
            .header("origin", "https://evil.example")
            .form(&[("csrf", "")])
            .send()
            .await
            .expect("send");
        assert_eq!(forged.status().as_u16(), 403, "{action}");
    }
    let html = app.http.get(format!("{}/orgs", app.url)).header(COOKIE, &cookie).send().await.expect("page");
    let html = html.text().await.expect("html");
    assert!(html.contains(&format!("action=\"/invitations/{id}/accept\"")) && html.contains("Soylent"), "{html}");
    let csrf = twostep_testkit::csrf_of(&html);
    let accepted = app
        .http
        .post(format!("{}/invitations/{id}/accept", app.url))
        .header(COOKIE, &cookie)
        .header("origin", &app.url)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("send");
    assert_eq!(accepted.status().as_u16(), 303);
    assert_eq!(accepted.headers()[LOCATION], "/orgs?notice=accepted");
    assert_eq!(member_count(&app, &owner, &org).await, 2);
}
