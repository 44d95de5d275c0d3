//! Organisations and 2FA policy (issue 6; SEC-47, SEC-62): owners require
//! 2FA of members, the operator's mandate with a grace date, enrolment-only
//! sessions.

use serde_json::json;
use twostep_domain::time::Timestamp;
use twostep_testkit::{Db, TestApp, User, each_backend, real_now};

// Members join by accepting, which takes a verified address: mail is on.
each_backend!(
    requiring_two_factor_is_refused_while_an_owner_lacks_it,
    a_member_without_two_factor_is_sent_to_enrol_first,
    membership_rules_and_the_last_owner,
    the_switch_reports_members_without_2fa_and_mails_each_once,
    removing_and_leaving_ask_first,
);

const TOLD: &str = "Your organisation now requires two-factor authentication";

pub async fn create_org(app: &TestApp, owner: &User, name: &str) -> String {
    let org = app.post("/api/v1/orgs", &json!({"name": name}), Some(&owner.token)).await.assert_status(201);
    assert_eq!(org.body["require_two_factor"], false);
    assert_eq!(org.str("name"), name);
    org.str("id")
}

/// Invites `user` to `org` with `role` and accepts as them: the only way
/// into an organisation (issue 14). `user`'s address must be verified.
pub async fn join(app: &TestApp, owner: &User, org: &str, user: &User, role: &str) {
    let sent = app
        .post(&format!("/api/v1/orgs/{org}/members"), &json!({"email": user.email, "role": role}), Some(&owner.token))
        .await
        .assert_status(202);
    app.post(&format!("/api/v1/me/invitations/{}/accept", sent.str("invitation_id")), &json!({}), Some(&user.token))
        .await
        .assert_status(201);
}

async fn require(app: &TestApp, owner: &User, org: &str, on: bool) -> twostep_testkit::Resp {
    app.put(&format!("/api/v1/orgs/{org}/two-factor-policy"), &json!({"require_two_factor": on}), Some(&owner.token))
        .await
}

async fn requiring_two_factor_is_refused_while_an_owner_lacks_it(db: Db) {
    let (app, sink) = TestApp::spawn_with_mail(db).await;
    let owner = app.user().await;
    let co_owner = app.verified_user_with_totp(&sink).await;
    let org = create_org(&app, &owner, "Acme").await;
    join(&app, &owner, &org, &co_owner, "owner").await;
    let r = require(&app, &owner, &org, true).await.assert_error(409, "owners_without_two_factor");
    assert_eq!(r.body["error"]["owners"], json!([owner.email]));
    // The owner turns 2FA on; now the switch is accepted.
    let e = app.post("/api/v1/me/totp", &json!({}), Some(&owner.token)).await.assert_status(201);
    let secret = twostep_domain::factors::totp::otpauth::base32_decode(&e.str("secret")).expect("secret");
    app.post(
        "/api/v1/me/totp/confirm",
        &json!({"enrollment_id": e.str("enrollment_id"), "code": app.code(&secret, 0)}),
        Some(&owner.token),
    )
    .await
    .assert_status(201);
    let r = require(&app, &owner, &org, true).await.assert_status(200);
    assert_eq!(r.body["require_two_factor"], true);
    let shown = app.get(&format!("/api/v1/orgs/{org}"), Some(&owner.token)).await.assert_status(200);
    assert_eq!(shown.body["require_two_factor"], true);
    // An owner cannot turn their own 2FA off while the organisation requires
    // it, and the refusal names who requires it (issue 20, item 5)…
    let refused = app
        .delete("/api/v1/me/two-factor", Some(&owner.token))
        .await
        .assert_error(403, "two_factor_required_by_policy");
    assert_eq!(refused.body["error"]["required_by"], json!({"organisations": ["Acme"], "operator": false}));
    let message = refused.body["error"]["message"].as_str().expect("message");
    assert!(message.starts_with("Your organisation \u{201c}Acme\u{201d} requires"), "{message}");
    // …which the pages say before anyone clicks: no "Disable" button, and the
    // removal of the only factor answers with the reason instead of asking.
    let security = app.page("/security", Some(&owner.token)).await.2;
    assert!(security.contains("Your organisation \u{201c}Acme\u{201d} requires two-factor authentication, so it cannot be turned off, and your only second factor cannot be removed"), "{security}");
    assert!(!security.contains("href=\"/security/two-factor/disable\""));
    let (status, _, asked) = app.page("/security/two-factor/disable", Some(&owner.token)).await;
    assert_eq!(status, 403);
    assert!(
        asked.contains("Your organisation \u{201c}Acme\u{201d} requires") && !asked.contains("confirm-form"),
        "{asked}"
    );
    let list = app.get("/api/v1/me/authenticators", Some(&owner.token)).await.assert_status(200);
    let id = list.body[0]["id"].as_str().expect("id").to_owned();
    app.delete(&format!("/api/v1/me/authenticators/{id}"), Some(&owner.token))
        .await
        .assert_error(403, "two_factor_required_by_policy");
    // Turning the rule off lets them.
    require(&app, &owner, &org, false).await.assert_status(200);
    app.delete("/api/v1/me/two-factor", Some(&owner.token)).await.assert_status(204);
}

async fn a_member_without_two_factor_is_sent_to_enrol_first(db: Db) {
    let (app, sink) = TestApp::spawn_with_mail(db).await;
    let owner = app.user_with_totp().await;
    let member = app.verified_user(&sink).await;
    let org = create_org(&app, &owner, "Initech").await;
    join(&app, &owner, &org, &member, "member").await;
    app.get(&format!("/api/v1/orgs/{org}"), Some(&member.token)).await.assert_status(200);
    require(&app, &owner, &org, true).await.assert_status(200);

    // Owners see who lacks 2FA, and can filter on it.
    let all = app.get(&format!("/api/v1/orgs/{org}"), Some(&owner.token)).await.assert_status(200);
    let members = all.body["members"].as_array().expect("members");
    assert_eq!(members.len(), 2);
    assert_eq!(members[0]["role"], "owner");
    assert_eq!(members[0]["two_factor_enabled"], true);
    assert_eq!(members[1]["email"], member.email.as_str());
    assert_eq!(members[1]["two_factor_enabled"], false);
    let without = app.get(&format!("/api/v1/orgs/{org}?two_factor=false"), Some(&owner.token)).await.assert_status(200);
    assert_eq!(without.body["members"].as_array().expect("members").len(), 1);
    assert_eq!(without.body["members"][0]["email"], member.email.as_str());

    // The member's existing session reaches nothing of the organisation.
    app.get(&format!("/api/v1/orgs/{org}"), Some(&member.token)).await.assert_error(403, "two_factor_required");
    // Signing in gives an enrolment-only session.
    let login = app.login(&member.email, &member.password).await.assert_status(200);
    assert_eq!(login.str("status"), "enrollment_required");
    let token = login.str("session_token");
    let me = app.get("/api/v1/me", Some(&token)).await.assert_status(200);
    assert_eq!(me.body["two_factor"]["enabled"], false);
    // It may list its organisations (to leave one: issue 14), but reaches
    // nothing of them.
    app.get("/api/v1/orgs", Some(&token)).await.assert_status(200);
    app.get(&format!("/api/v1/orgs/{org}"), Some(&token)).await.assert_error(403, "enrollment_required");
    app.get(&format!("/api/v1/orgs/{org}/invitations"), Some(&token)).await.assert_error(403, "enrollment_required");
    app.get("/api/v1/me/invitations", Some(&token)).await.assert_error(403, "enrollment_required");
    app.get("/api/v1/me/sessions", Some(&token)).await.assert_error(403, "enrollment_required");
    app.post("/api/v1/orgs", &json!({"name": "x"}), Some(&token)).await.assert_error(403, "enrollment_required");
    // It may set up a factor; confirming it lifts the limit.
    let e = app.post("/api/v1/me/totp", &json!({}), Some(&token)).await.assert_status(201);
    let secret = twostep_domain::factors::totp::otpauth::base32_decode(&e.str("secret")).expect("secret");
    let c = app
        .post(
            "/api/v1/me/totp/confirm",
            &json!({"enrollment_id": e.str("enrollment_id"), "code": app.code(&secret, 0)}),
            Some(&token),
        )
        .await
        .assert_status(201);
    assert_eq!(c.body["recovery_codes"].as_array().expect("codes").len(), 10);
    // In a new session (SEC-52): the enrolment-only token has ended.
    app.get("/api/v1/me", Some(&token)).await.assert_error(401, "unauthenticated");
    let token = c.str("session_token");
    let shown = app.get(&format!("/api/v1/orgs/{org}"), Some(&token)).await.assert_status(200);
    assert_eq!(shown.body["members"][1]["two_factor_enabled"], true);
    app.get("/api/v1/me/sessions", Some(&token)).await.assert_status(200);
    // And the next sign-in asks for the second factor as usual.
    let login = app.login(&member.email, &member.password).await.assert_status(200);
    assert_eq!(login.str("status"), "second_factor_required");
}

async fn membership_rules_and_the_last_owner(db: Db) {
    let (app, sink) = TestApp::spawn_with_mail(db).await;
    let owner = app.user().await;
    let member = app.verified_user(&sink).await;
    let stranger = app.verified_user(&sink).await;
    let org = create_org(&app, &owner, "Globex").await;
    let members = format!("/api/v1/orgs/{org}/members");
    let add = |email: &str, role: &str| json!({"email": email, "role": role});
    join(&app, &owner, &org, &member, "member").await;
    app.post(&members, &add(&member.email, "member"), Some(&owner.token)).await.assert_error(409, "already_member");
    // An address without an account gets an invitation like any other (no oracle).
    app.post(&members, &add("nobody@example.com", "member"), Some(&owner.token)).await.assert_status(202);
    app.post(&members, &add(&stranger.email, "boss"), Some(&owner.token)).await.assert_error(400, "invalid_request");
    app.post(&members, &add("not an address", "member"), Some(&owner.token)).await.assert_error(400, "invalid_email");
    // Members may not manage; strangers cannot even see it (SEC-62: 404, not 403).
    app.post(&members, &add(&stranger.email, "member"), Some(&member.token)).await.assert_error(403, "forbidden");
    require(&app, &member, &org, true).await.assert_error(403, "forbidden");
    app.get(&format!("/api/v1/orgs/{org}"), Some(&stranger.token)).await.assert_error(404, "not_found");
    app.get("/api/v1/orgs/no-such-org", Some(&owner.token)).await.assert_error(404, "not_found");
    app.post("/api/v1/orgs", &json!({"name": "   "}), Some(&owner.token)).await.assert_error(400, "invalid_name");
    let mine = app.get("/api/v1/orgs", Some(&member.token)).await.assert_status(200);
    assert_eq!(
        mine.body,
        json!([{"id": org, "name": "Globex", "require_two_factor": false, "refuse_synced_passkeys": false, "role": "member"}])
    );

    // The last owner can neither leave nor step down…
    let owner_id = app.get("/api/v1/me", Some(&owner.token)).await.str("id");
    let member_id = app.get("/api/v1/me", Some(&member.token)).await.str("id");
    app.delete(&format!("{members}/{owner_id}"), Some(&owner.token)).await.assert_error(409, "last_owner");
    app.put(&format!("{members}/{owner_id}"), &json!({"role": "member"}), Some(&owner.token))
        .await
        .assert_error(409, "last_owner");
    // …but can hand over: promote, then step down.
    app.put(&format!("{members}/{member_id}"), &json!({"role": "owner"}), Some(&owner.token)).await.assert_status(204);
    app.put(&format!("{members}/{owner_id}"), &json!({"role": "member"}), Some(&owner.token)).await.assert_status(204);
    require(&app, &owner, &org, true).await.assert_error(403, "forbidden");
    // A member may leave; an owner may remove a member.
    app.delete(&format!("{members}/{owner_id}"), Some(&owner.token)).await.assert_status(204);
    app.get(&format!("/api/v1/orgs/{org}"), Some(&owner.token)).await.assert_error(404, "not_found");
    join(&app, &member, &org, &stranger, "member").await;
    let stranger_id = app.get("/api/v1/me", Some(&stranger.token)).await.str("id");
    app.delete(&format!("{members}/{stranger_id}"), Some(&member.token)).await.assert_status(204);
    app.delete(&format!("{members}/{stranger_id}"), Some(&member.token)).await.assert_error(404, "not_found");
}

async fn mandate(app: &TestApp, user: &User) -> String {
    app.login(&user.email, &user.password).await.assert_status(200).str("status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_mandate_applies_from_its_date() {
    for db in [twostep_testkit::Db::Sqlite, twostep_testkit::Db::Postgres] {
        let app = TestApp::spawn_with(db, |s| {
            s.require_two_factor = true;
            s.two_factor_enforce_from = Some(Timestamp::from_secs(real_now()).plus_secs(7 * 24 * 3600));
        })
        .await;
        let user = app.user().await;
        let with_totp = app.user_with_totp().await;
        // Before the date: sign-in as usual (pages show a banner).
        assert_eq!(mandate(&app, &user).await, "authenticated");
        app.delete("/api/v1/me/two-factor", Some(&with_totp.token)).await.assert_status(204);
        let with_totp = app.user_with_totp().await;
        // From the date on: enrolment first; 2FA can no longer be turned off.
        app.clock.advance(7 * 24 * 3600);
        assert_eq!(mandate(&app, &user).await, "enrollment_required");
        let login = app.login(&with_totp.email, &with_totp.password).await.assert_status(200);
        assert_eq!(login.str("status"), "second_factor_required");
        let token = app.sign_in_with(&with_totp, "totp", &app.code(&with_totp.secret, 0)).await.str("session_token");
        app.delete("/api/v1/me/two-factor", Some(&token)).await.assert_error(403, "two_factor_required_by_policy");
    }
}

/// Issue 20, item 6: turning "Require two-factor" on says how many members
/// lack it and e-mails them, once: 50 owners' requests released together
/// (over two instances on PostgreSQL) and a later off-and-on send one mail.
async fn the_switch_reports_members_without_2fa_and_mails_each_once(db: Db) {
    let (app, sink) = TestApp::spawn_with_mail(db).await;
    let owner = app.verified_user_with_totp(&sink).await;
    let member = app.verified_user(&sink).await;
    let org = create_org(&app, &owner, "Acme").await;
    join(&app, &owner, &org, &member, "member").await;
    let page = app.page(&format!("/orgs/{org}"), Some(&owner.token)).await.2;
    assert!(page.contains("1 member does not have it yet."), "said before the switch: {page}");
    let bases = app.instances().await;
    let (token, path) = (owner.token.clone(), format!("/api/v1/orgs/{org}/two-factor-policy"));
    let rs = crate::burst::burst(&bases, 50, move |_, c, base| {
        c.put(format!("{base}{path}")).bearer_auth(&token).json(&json!({"require_two_factor": true}))
    })
    .await;
    assert_eq!(crate::burst::count(&rs, 200), 50, "{:?}", crate::burst::tally(&rs));
    assert!(rs.iter().all(|r| r.body["members_without_two_factor"] == 1));
    let notified: u64 = rs.iter().map(|r| r.body["members_notified"].as_u64().expect("count")).sum();
    assert_eq!(notified, 1, "one request told the member");
    sink.wait_for_subject(TOLD).await;
    require(&app, &owner, &org, false).await.assert_status(200);
    let again = require(&app, &owner, &org, true).await.assert_status(200);
    assert_eq!(
        (again.body["members_without_two_factor"].as_u64(), again.body["members_notified"].as_u64()),
        (Some(1), Some(0))
    );
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let mails = sink.with_subject(TOLD);
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0]["to"], json!([member.email]));
    assert!(mails[0]["text"].as_str().expect("text").contains("\"Acme\""), "the mail names the organisation");
    // The page says what happened, in numbers.
    let (_, location, _) = app
        .form_post(
            &format!("/orgs/{org}/two-factor"),
            &owner.token,
            &[("csrf", &csrf(&app, &owner, &org).await), ("require", "true")],
        )
        .await;
    let shown = app.page(&location, Some(&owner.token)).await.2;
    assert!(
        shown.contains("1 member without it must set it up at their next sign-in; each was e-mailed about it before."),
        "{shown}"
    );
}

async fn csrf(app: &TestApp, user: &User, org: &str) -> String {
    twostep_testkit::csrf_of(&app.page(&format!("/orgs/{org}"), Some(&user.token)).await.2)
}

/// Issue 20, item 6: "Remove" and "Leave" open a page that says what
/// follows and asks; only its form acts. Others cannot reach the question.
async fn removing_and_leaving_ask_first(db: Db) {
    let (app, sink) = TestApp::spawn_with_mail(db).await;
    let owner = app.verified_user(&sink).await;
    let member = app.verified_user(&sink).await;
    let org = create_org(&app, &owner, "Acme").await;
    join(&app, &owner, &org, &member, "member").await;
    let org_page = app.page(&format!("/orgs/{org}"), Some(&owner.token)).await.2;
    let remove = format!("/orgs/{org}/members/{}/remove", member_id(&app, &owner, &org, &member).await);
    assert!(org_page.contains(&format!("href=\"{remove}\"")), "Remove is a link to the question");
    let (status, _, asked) = app.page(&remove, Some(&owner.token)).await;
    assert_eq!(status, 200);
    assert!(asked.contains(&format!("Remove {} from Acme?", member.email)) && asked.contains("loses access to Acme"));
    assert_eq!(member_count(&app, &owner, &org).await, 2, "asking changes nothing");
    assert_eq!(app.page(&remove, Some(&member.token)).await.0, 403, "a member may not remove");
    let stranger = app.user().await;
    assert_eq!(app.page(&format!("/orgs/{org}/leave"), Some(&stranger.token)).await.0, 404);
    let (_, _, leave) = app.page(&format!("/orgs/{org}/leave"), Some(&member.token)).await;
    assert!(leave.contains("Leave Acme?") && leave.contains("an owner must invite you again"));
    let token = twostep_testkit::csrf_of(&asked);
    let (status, location, _) = app.form_post(&remove, &owner.token, &[("csrf", &token)]).await;
    assert_eq!((status, location.as_str()), (303, format!("/orgs/{org}?notice=removed").as_str()));
    assert_eq!(member_count(&app, &owner, &org).await, 1);
}

async fn member_id(app: &TestApp, owner: &User, org: &str, user: &User) -> String {
    let shown = app.get(&format!("/api/v1/orgs/{org}"), Some(&owner.token)).await.assert_status(200);
    let members = shown.body["members"].as_array().expect("members").clone();
    members.iter().find(|m| m["email"] == user.email.as_str()).expect("member")["account_id"]
        .as_str()
        .expect("id")
        .to_owned()
}

async fn member_count(app: &TestApp, owner: &User, org: &str) -> usize {
    let shown = app.get(&format!("/api/v1/orgs/{org}"), Some(&owner.token)).await.assert_status(200);
    shown.body["members"].as_array().expect("members").len()
}
