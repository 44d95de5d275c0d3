//! Codes and refresh tokens under a burst: 50 token requests presenting
//! the same one, released together over pre-opened connections (on
//! PostgreSQL spread over two instances): exactly one is answered with
//! tokens. The others are replays, so the grant ends revoked.

use twostep_testkit::{Resp, TestApp, both_backends};

use crate::burst::{burst, count, tally};
use crate::oidc::{code_for, exchange, pkce, register, token_request, two_factor_session};

const N: usize = 50;

both_backends!(a_code_burst_issues_once, a_refresh_burst_rotates_once);

async fn a_code_burst_issues_once(app: TestApp) {
    let c = std::sync::Arc::new(register(&app, &["--skip-consent"]).await);
    let (_, session) = two_factor_session(&app).await;
    let (verifier, challenge) = pkce();
    let code = code_for(&app, &session, &c, &challenge).await;
    let bases = app.instances().await;
    let client = c.clone();
    let resps: Vec<Resp> = burst(&bases, N, move |_, http, base| {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", client.redirect.as_str()),
            ("code_verifier", verifier.as_str()),
        ];
        token_request(http, base, &client, &form)
    })
    .await;
    assert_eq!(count(&resps, 200), 1, "{:?}", tally(&resps));
    assert!(
        resps.iter().filter(|r| r.status != 200).all(|r| r.body["error"] == "invalid_grant"),
        "{:?}",
        tally(&resps)
    );
    // The replays revoked what the one success issued.
    let winner = resps.iter().find(|r| r.status == 200).expect("one");
    app.get("/oidc/userinfo", Some(&winner.str("access_token"))).await.assert_status(401);
}

async fn a_refresh_burst_rotates_once(app: TestApp) {
    let c = std::sync::Arc::new(register(&app, &["--skip-consent"]).await);
    let (_, session) = two_factor_session(&app).await;
    let (verifier, challenge) = pkce();
    let code = code_for(&app, &session, &c, &challenge).await;
    let refresh = exchange(&app, &c, &code, &verifier).await.assert_status(200).str("refresh_token");
    let bases = app.instances().await;
    let client = c.clone();
    let resps: Vec<Resp> = burst(&bases, N, move |_, http, base| {
        let form = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())];
        token_request(http, base, &client, &form)
    })
    .await;
    assert_eq!(count(&resps, 200), 1, "{:?}", tally(&resps));
    assert!(
        resps.iter().filter(|r| r.status != 200).all(|r| r.body["error"] == "invalid_grant"),
        "{:?}",
        tally(&resps)
    );
    let winner = resps.iter().find(|r| r.status == 200).expect("one");
    let again = exchange_refresh(&app, &c, &winner.str("refresh_token")).await;
    assert_eq!(again.body["error"], "invalid_grant", "the family was revoked by the reuse");
}

async fn exchange_refresh(app: &TestApp, c: &crate::oidc::Client, refresh: &str) -> Resp {
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    Resp::from(token_request(&app.http, &app.url, c, &form).send().await.expect("refresh")).await
}
