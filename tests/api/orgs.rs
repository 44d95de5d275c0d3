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
);

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
    // An owner cannot turn their own 2FA off while the organisation requires it.
    app.delete("/api/v1/me/two-factor", Some(&owner.token)).await.assert_error(403, "two_factor_required_by_policy");
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
    assert_eq!(mine.body, json!([{"id": org, "name": "Globex", "require_two_factor": false, "role": "member"}]));

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
