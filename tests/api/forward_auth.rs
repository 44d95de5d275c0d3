//! Forward-auth (`/api/authz/*`) as the proxies ask it: every rule field,
//! every answer, both protocols, the return-URL checks, expiry, the IP
//! allow-list and sign-out. The proxies themselves: `forward_auth_proxy.rs`.

use std::sync::Arc;

use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::json;

use twostep_testkit::{Db, Resp, TestApp, User, csrf_of, each_backend};

each_backend!(
    every_policy_answers_as_the_issue_says,
    methods_networks_and_subjects_narrow_rules,
    the_caddy_and_traefik_protocol_redirects_browsers_and_refuses_scripts,
    a_bearer_token_counts_like_the_cookie,
    sign_in_returns_to_the_protected_app_and_sign_out_ends_access,
    return_urls_outside_the_cookie_domains_are_refused,
    expiry_and_the_allow_list_apply_on_every_check,
    bad_proxy_headers_are_a_400_never_a_500,
    a_sign_out_anywhere_ends_access_with_the_next_request,
    an_account_the_mandate_holds_is_sent_to_enrolment,
);

pub const RULES: &str = r#"
default_policy = "deny"
cookie_domains = ["example.test"]
[[rules]]
domain = ["app.example.test"]
path = ["^/public/"]
policy = "bypass"
[[rules]]
domain = ["app.example.test"]
path = ["^/admin"]
policy = "deny"
[[rules]]
domain = ["app.example.test"]
path = ["^/one/"]
policy = "one_factor"
[[rules]]
domain = ["app.example.test"]
path = ["^/form"]
methods = ["GET"]
policy = "bypass"
[[rules]]
domain = ["*.lan.example.test"]
networks = ["10.0.0.0/8"]
policy = "bypass"
[[rules]]
domain = ["team.example.test"]
subject = ["user:ada@example.com", "org:Acme"]
policy = "one_factor"
[[rules]]
domain = ["app.example.test"]
policy = "two_factor"
"#;

pub fn rules() -> Arc<twostep_domain::policy::access::Access> {
    let spec: twostep_domain::policy::access::AccessSpec = toml::from_str(RULES).expect("rules");
    Arc::new(spec.compile().expect("valid rules"))
}

/// A server with `RULES`, trusting loopback as its proxy.
async fn spawn(db: Db) -> TestApp {
    TestApp::spawn_with_resolved(db, |r| {
        r.trusted_proxies = twostep_domain::policy::allowlist::parse_ranges("127.0.0.1").expect("ranges");
        r.settings.access = rules();
    })
    .await
}

/// How a check is asked.
#[derive(Clone, Copy)]
enum Ask<'a> {
    /// nginx: `X-Original-URL`.
    Nginx,
    /// Caddy/Traefik: `X-Forwarded-*`, with this original method.
    Forwarded(&'a str),
}

struct Check<'a> {
    ask: Ask<'a>,
    url: &'a str,
    cookie: Option<&'a str>,
    bearer: Option<&'a str>,
    html: bool,
    ip: &'a str,
}

impl<'a> Check<'a> {
    fn nginx(url: &'a str) -> Self {
        Self { ask: Ask::Nginx, url, cookie: None, bearer: None, html: true, ip: "192.0.2.10" }
    }
    fn forwarded(method: &'a str, url: &'a str) -> Self {
        Self { ask: Ask::Forwarded(method), ..Self::nginx(url) }
    }
    fn cookie(mut self, token: &'a str) -> Self {
        self.cookie = Some(token);
        self
    }
    async fn send(self, app: &TestApp) -> Resp {
        let (path, method) = match self.ask {
            Ask::Nginx => ("/api/authz/auth-request", "GET"),
            Ask::Forwarded(m) => ("/api/authz/forward-auth", m),
        };
        let mut req = app.http.get(format!("{}{path}", app.url)).header("x-forwarded-for", self.ip);
        let u = url::Url::parse(self.url).expect("url");
        req = match self.ask {
            Ask::Nginx => req.header("x-original-url", self.url).header("x-original-method", method),
            Ask::Forwarded(m) => req
                .header("x-forwarded-method", m)
                .header("x-forwarded-proto", u.scheme())
                .header("x-forwarded-host", u.host_str().expect("host"))
                .header("x-forwarded-uri", &u[url::Position::BeforePath..]),
        };
        if self.html {
            req = req.header("accept", "text/html,application/xhtml+xml,*/*;q=0.8");
        }
        if let Some(t) = self.cookie {
            req = req.header(COOKIE, format!("other=1; twostep_fa={t}"));
        }
        if let Some(t) = self.bearer {
            req = req.bearer_auth(t);
        }
        Resp::from(req.send().await.expect("check")).await
    }
}

const APP: &str = "http://app.example.test";

fn sign_in_location(app: &TestApp, url: &str) -> String {
    format!("{}/login?rd={}", app.url, url::form_urlencoded::byte_serialize(url.as_bytes()).collect::<String>())
}

#[track_caller]
fn assert_remote(r: &Resp, user: &User, groups: &str) {
    assert_eq!(r.header("remote-user"), user.email);
    assert_eq!(r.header("remote-email"), user.email);
    assert_eq!(r.header("remote-name"), user.email);
    assert_eq!(r.header("remote-groups"), groups);
}

async fn every_policy_answers_as_the_issue_says(db: Db) {
    let app = spawn(db).await;
    let plain = app.user().await;
    let strong = app.user_with_totp().await;
    let code = app.code(&strong.secret, 0);
    let full = app.sign_in_with(&strong, "totp", &code).await.assert_status(200).str("session_token");

    // bypass: nothing needed, nobody named.
    let r = Check::nginx(&format!("{APP}/public/logo.png")).send(&app).await.assert_status(200);
    assert!(r.headers.contains_key("remote-user") && r.header("remote-user").is_empty());
    // deny: refused even with two factors.
    Check::nginx(&format!("{APP}/admin/users")).cookie(&full).send(&app).await.assert_status(403);
    Check::nginx(&format!("{APP}/one/../admin")).cookie(&full).send(&app).await.assert_status(403);
    // No rule: the default (deny).
    Check::nginx("http://elsewhere.example.test/").cookie(&full).send(&app).await.assert_status(403);

    // one_factor: nginx is told to send the browser to sign in with a 401.
    let url = format!("{APP}/one/page?x=1");
    let r = Check::nginx(&url).send(&app).await.assert_status(401);
    assert_eq!(r.header("location"), sign_in_location(&app, &url));
    let r = Check::nginx(&url).cookie(&plain.token).send(&app).await.assert_status(200);
    assert_remote(&r, &plain, "");
    assert_eq!(r.header("cache-control"), "no-store");

    // two_factor: the password alone is not enough; an account without a
    // second factor is sent to set one up.
    let url = format!("{APP}/reports");
    let r = Check::nginx(&url).cookie(&plain.token).send(&app).await.assert_status(401);
    assert_eq!(r.header("location"), format!("{}/security/totp/new", app.url));
    let r = Check::nginx(&url).cookie(&full).send(&app).await.assert_status(200);
    assert_remote(&r, &strong, "");
    // A remembered browser signs in with the password alone: sent to
    // prove the second factor (re-auth), then back through the portal.
    let remembered = password_only_session(&app, &strong).await;
    let r = Check::nginx(&url).cookie(&remembered).send(&app).await.assert_status(401);
    let back = format!("/login?rd={}", url::form_urlencoded::byte_serialize(url.as_bytes()).collect::<String>());
    let want = format!(
        "{}/reauth?next={}",
        app.url,
        url::form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>()
    );
    assert_eq!(r.header("location"), want);
    // Re-auth keeps that way back (its `safe_next` takes the local path).
    let page =
        app.http.get(&want).header(COOKIE, format!("twostep_session={remembered}")).send().await.expect("reauth page");
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("name=\"next\" value=\"/login?rd=http%3A%2F%2Fapp.example.test%2Freports\""), "{html}");
    Check::nginx(&format!("{APP}/one/x")).cookie(&remembered).send(&app).await.assert_status(200);
    // A token that is no session is nobody.
    Check::nginx(&url).cookie("not-a-session").send(&app).await.assert_status(401);
}

/// Signs in through the pages with "remember this browser", then again
/// with the remembered browser: a session with the password only.
async fn password_only_session(app: &TestApp, user: &User) -> String {
    let page = app.http.get(format!("{}/login", app.url)).send().await.expect("page");
    let pre = pair(set_cookies(&page).iter().find(|c| c.starts_with("twostep_csrf=")).expect("pre-session"));
    let csrf = csrf_of(&page.text().await.expect("html"));
    let form = [("csrf", csrf.as_str()), ("email", user.email.as_str()), ("password", user.password.as_str())];
    let login = |cookie: String| app.http.post(format!("{}/login", app.url)).header(COOKIE, cookie).form(&form).send();
    let r = login(pre.clone()).await.expect("login");
    let token = set_cookies(&r).into_iter().find(|c| c.starts_with("twostep_login=")).expect("login token");
    // A code is good once: a step nobody used yet.
    app.clock.advance(30);
    let code = app.code(&user.secret, 0);
    let r = app
        .http
        .post(format!("{}/login/verify", app.url))
        .header(COOKIE, format!("{pre}; {}", pair(&token)))
        .form(&[("csrf", csrf.as_str()), ("method", "totp"), ("code", code.as_str()), ("remember", "on")])
        .send()
        .await
        .expect("verify");
    assert_eq!(r.status().as_u16(), 303);
    let device = set_cookies(&r).into_iter().find(|c| c.starts_with("twostep_device=")).expect("remembered");
    let r = login(format!("{pre}; {}", pair(&device))).await.expect("again");
    assert_eq!(r.status().as_u16(), 303);
    let session = set_cookies(&r).into_iter().find(|c| c.starts_with("twostep_session=")).expect("session");
    pair(&session)["twostep_session=".len()..].to_owned()
}

async fn methods_networks_and_subjects_narrow_rules(db: Db) {
    let app = spawn(db).await;
    // methods: GET /form passes, POST /form falls to two_factor.
    Check::forwarded("GET", &format!("{APP}/form")).send(&app).await.assert_status(200);
    let r = Check::forwarded("POST", &format!("{APP}/form")).send(&app).await.assert_status(303);
    assert!(r.header("location").starts_with(&format!("{}/login?rd=", app.url)));

    // networks: the client address (X-Forwarded-For from the trusted proxy).
    let lan = "http://printer.lan.example.test/";
    Check { ip: "10.1.2.3", ..Check::nginx(lan) }.send(&app).await.assert_status(200);
    Check { ip: "192.0.2.1", ..Check::nginx(lan) }.send(&app).await.assert_status(403);

    // subjects: a user by e-mail, an organisation's members; others fall
    // through to the default (deny); nobody signed in must sign in first.
    let password = "correct horse battery staple";
    app.post("/api/v1/accounts", &json!({"email": "ada@example.com", "password": password}), None)
        .await
        .assert_status(201);
    let ada = app.login("ada@example.com", password).await.assert_status(200).str("session_token");
    let member = app.user().await;
    let outsider = app.user().await;
    let org = app.post("/api/v1/orgs", &json!({"name": "Acme"}), Some(&member.token)).await.assert_status(201);
    assert!(!org.str("id").is_empty());
    let team = "https://team.example.test/board";
    Check::nginx(team).cookie(&ada).send(&app).await.assert_status(200);
    let r = Check::nginx(team).cookie(&member.token).send(&app).await.assert_status(200);
    assert_remote(&r, &member, "Acme");
    Check::nginx(team).cookie(&outsider.token).send(&app).await.assert_status(403);
    let r = Check::nginx(team).send(&app).await.assert_status(401);
    assert_eq!(r.header("location"), sign_in_location(&app, team));
}

async fn the_caddy_and_traefik_protocol_redirects_browsers_and_refuses_scripts(db: Db) {
    let app = spawn(db).await;
    let user = app.user().await;
    let url = format!("{APP}/one/a%20b?q=%2F");
    let r = Check::forwarded("GET", &url).send(&app).await.assert_status(302);
    assert_eq!(r.header("location"), sign_in_location(&app, &url));
    Check::forwarded("HEAD", &url).send(&app).await.assert_status(302);
    let r = Check::forwarded("POST", &url).send(&app).await.assert_status(303);
    assert_eq!(r.header("location"), sign_in_location(&app, &url));
    // Scripts get 401 and no redirect: no HTML in Accept, or XHR.
    for check in [Check { html: false, ..Check::forwarded("GET", &url) }, Check { html: false, ..Check::nginx(&url) }] {
        let r = check.send(&app).await.assert_error(401, "unauthenticated");
        assert!(r.header("location").is_empty());
    }
    let r = app
        .http
        .get(format!("{}/api/authz/forward-auth", app.url))
        .header("x-forwarded-proto", "http")
        .header("x-forwarded-host", "app.example.test")
        .header("x-forwarded-uri", "/one/x")
        .header("accept", "text/html")
        .header("x-requested-with", "XMLHttpRequest")
        .send()
        .await
        .expect("xhr");
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers().get("location").is_none());
    // Passing and refusing read the same over this protocol; Traefik asks
    // with the original method itself.
    let r = Check::forwarded("GET", &url).cookie(&user.token).send(&app).await.assert_status(200);
    assert_remote(&r, &user, "");
    Check::forwarded("GET", &format!("{APP}/admin")).send(&app).await.assert_status(403);
    let r = app
        .http
        .post(format!("{}/api/authz/forward-auth", app.url))
        .header("x-forwarded-proto", "http")
        .header("x-forwarded-host", "app.example.test")
        .header("x-forwarded-uri", "/public/x")
        .send()
        .await
        .expect("traefik");
    assert_eq!(r.status().as_u16(), 200);
}

async fn a_bearer_token_counts_like_the_cookie(db: Db) {
    let app = spawn(db).await;
    let plain = app.user().await;
    let strong = app.user_with_totp().await;
    let code = app.code(&strong.secret, 0);
    let full = app.sign_in_with(&strong, "totp", &code).await.assert_status(200).str("session_token");
    let one = format!("{APP}/one/x");
    let two = format!("{APP}/two");
    let r = Check { bearer: Some(&plain.token), html: false, ..Check::nginx(&one) }.send(&app).await;
    assert_remote(&r.assert_status(200), &plain, "");
    Check { bearer: Some(&plain.token), html: false, ..Check::nginx(&two) }.send(&app).await.assert_status(401);
    Check { bearer: Some(&full), html: false, ..Check::forwarded("GET", &two) }.send(&app).await.assert_status(200);
    Check { bearer: Some("nobody"), html: false, ..Check::nginx(&one) }.send(&app).await.assert_status(401);
}

/// `Set-Cookie` values of a response.
fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers().get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect()
}

fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().expect("pair").to_owned()
}

async fn sign_in_returns_to_the_protected_app_and_sign_out_ends_access(db: Db) {
    let app = spawn(db).await;
    let user = app.user().await;
    let target = format!("{APP}/one/dashboard?tab=2");
    let rd = url::form_urlencoded::byte_serialize(target.as_bytes()).collect::<String>();
    // The portal remembers where to go back to while the person signs in.
    let page = app.http.get(format!("{}/login?rd={rd}", app.url)).send().await.expect("page");
    assert_eq!(page.status().as_u16(), 200);
    let cookies = set_cookies(&page);
    let ret = cookies.iter().find(|c| c.starts_with("twostep_return=")).expect("return cookie");
    let pre = cookies.iter().find(|c| c.starts_with("twostep_csrf=")).expect("pre-session");
    let csrf = csrf_of(&page.text().await.expect("html"));
    let r = app
        .http
        .post(format!("{}/login", app.url))
        .header(COOKIE, format!("{}; {}", pair(pre), pair(ret)))
        .form(&[("csrf", csrf.as_str()), ("email", user.email.as_str()), ("password", user.password.as_str())])
        .send()
        .await
        .expect("login");
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], format!("/login?rd={rd}"));
    let session = set_cookies(&r).into_iter().find(|c| c.starts_with("twostep_session=")).expect("session");
    // Signed in, the portal issues the cookie for the whole domain and sends
    // the browser back.
    let back =
        app.http.get(format!("{}/login?rd={rd}", app.url)).header(COOKIE, pair(&session)).send().await.expect("back");
    // A page that moves on at once (a redirect would fall foul of the
    // sign-in form's `form-action 'self'` in the browser).
    assert_eq!(back.status().as_u16(), 200);
    let fa = set_cookies(&back).into_iter().find(|c| c.starts_with("twostep_fa=")).expect("fa cookie");
    let html = back.text().await.expect("html");
    let escaped = target.replace('&', "&amp;");
    assert!(html.contains(&format!("content=\"0;url={escaped}\"")), "{html}");
    assert!(html.contains(&format!("<a href=\"{escaped}\">")), "{html}");
    for part in ["Domain=example.test", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(fa.contains(part), "{part} missing: {fa}");
    }
    let token = pair(&fa)["twostep_fa=".len()..].to_owned();
    Check::nginx(&target).cookie(&token).send(&app).await.assert_status(200);

    // Signing out at the portal ends access to every app at once.
    let security = app.http.get(format!("{}/security", app.url)).header(COOKIE, pair(&session)).send().await;
    let csrf = csrf_of(&security.expect("page").text().await.expect("html"));
    let out = app
        .http
        .post(format!("{}/logout", app.url))
        .header(COOKIE, pair(&session))
        .header("origin", &app.url)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status().as_u16(), 303);
    let cleared = set_cookies(&out);
    assert!(cleared.iter().any(|c| c.starts_with("twostep_fa=;") && c.contains("Max-Age=0")), "{cleared:?}");
    Check::nginx(&target).cookie(&token).send(&app).await.assert_status(401);
}

async fn return_urls_outside_the_cookie_domains_are_refused(db: Db) {
    let app = spawn(db).await;
    let user = app.user().await;
    for evil in [
        "//evil.example",
        "https://example.test.evil/",
        "https://evilexample.test/",
        "https://evil.example/?http://app.example.test/",
        "http://app.example.test@evil.example/",
        "javascript:alert(1)//app.example.test",
        "https%3A%2F%2Fevil.example",
        "https:%2F%2Fevil.example",
        "http://evil.example\\@app.example.test/",
        "/security",
    ] {
        let rd = url::form_urlencoded::byte_serialize(evil.as_bytes()).collect::<String>();
        let page = app.http.get(format!("{}/login?rd={rd}", app.url)).send().await.expect("page");
        assert_eq!(page.status().as_u16(), 200, "{evil}");
        assert!(!set_cookies(&page).iter().any(|c| c.starts_with("twostep_return")), "{evil}");
        // Signed in, still no redirect off-site.
        let signed_in = app
            .http
            .get(format!("{}/login?rd={rd}", app.url))
            .header(COOKIE, format!("twostep_session={}", user.token))
            .send()
            .await
            .expect("page");
        assert!(signed_in.headers().get("location").is_none_or(|l| l.to_str().is_ok_and(|l| l.starts_with('/'))));
        assert!(!set_cookies(&signed_in).iter().any(|c| c.starts_with("twostep_fa")), "{evil}");
        assert!(!signed_in.text().await.expect("html").contains("evil"), "{evil}");
    }
    // A host no rule names falls to the default, deny: no redirect at all.
    let r = Check::nginx("https://app.other.example/").send(&app).await.assert_status(403);
    assert!(r.header("location").is_empty());
}

async fn expiry_and_the_allow_list_apply_on_every_check(db: Db) {
    let app = spawn(db).await;
    let user = app.user().await;
    let url = format!("{APP}/one/x");
    Check::nginx(&url).cookie(&user.token).send(&app).await.assert_status(200);
    // Idle: 30 minutes without a request ends it.
    app.clock.advance(31 * 60);
    Check::nginx(&url).cookie(&user.token).send(&app).await.assert_status(401);
    // Absolute: 12 hours however busy.
    let busy = app.login(&user.email, &user.password).await.assert_status(200).str("session_token");
    for _ in 0..24 {
        app.clock.advance(29 * 60);
        Check::nginx(&url).cookie(&busy).send(&app).await.assert_status(200);
    }
    app.clock.advance(29 * 60);
    Check::nginx(&url).cookie(&busy).send(&app).await.assert_status(401);

    // The account's IP allow-list: a check from outside it ends the session.
    let token = app.login(&user.email, &user.password).await.assert_status(200).str("session_token");
    let r = app
        .http
        .put(format!("{}/api/v1/me/ip-allowlist", app.url))
        .header("x-forwarded-for", "10.0.0.5")
        .bearer_auth(&token)
        .json(&json!({"entries": [{"cidr": "10.0.0.0/24"}]}))
        .send()
        .await
        .expect("allow-list");
    assert_eq!(r.status().as_u16(), 200);
    Check { ip: "10.0.0.7", ..Check::nginx(&url) }.cookie(&token).send(&app).await.assert_status(200);
    Check { ip: "192.0.2.1", ..Check::nginx(&url) }.cookie(&token).send(&app).await.assert_status(401);
    Check { ip: "10.0.0.7", ..Check::nginx(&url) }.cookie(&token).send(&app).await.assert_status(401);
}

async fn bad_proxy_headers_are_a_400_never_a_500(db: Db) {
    let app = spawn(db).await;
    let send = |path: &'static str, headers: Vec<(&'static str, &'static str)>| {
        let mut req = app.http.get(format!("{}{path}", app.url));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        async move { Resp::from(req.send().await.expect("send")).await }
    };
    send("/api/authz/auth-request", vec![]).await.assert_error(400, "invalid_request");
    send("/api/authz/forward-auth", vec![("x-forwarded-host", "app.example.test")])
        .await
        .assert_error(400, "invalid_request");
    for url in ["/relative", "javascript:alert(1)", "http://", "http://[::1", "ftp://app.example.test/"] {
        let r = send("/api/authz/auth-request", vec![("x-original-url", url)]).await;
        r.assert_error(400, "invalid_request");
    }
    let r = send(
        "/api/authz/forward-auth",
        vec![("x-forwarded-proto", "http"), ("x-forwarded-host", "app.example.test"), ("x-forwarded-uri", "no-slash")],
    )
    .await;
    r.assert_error(400, "invalid_request");
    let r = send(
        "/api/authz/forward-auth",
        vec![("x-forwarded-proto", "http"), ("x-forwarded-host", "a b"), ("x-forwarded-uri", "/")],
    )
    .await;
    r.assert_error(400, "invalid_request");
}

/// `RULES` as the `[access]` section of a configuration file.
fn config_file() -> String {
    format!("[access]\n{}", RULES.replace("[[rules]]", "[[access.rules]]"))
}

#[test]
fn config_check_validates_the_rules_and_access_check_explains_them() {
    use crate::binary::{output, twostep};
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("twostep.toml"), config_file()).expect("write");
    let (ok, out, err) = output(twostep(dir.path()).args(["config", "check"]), "");
    assert!(ok && out.contains("[[access.rules]]"), "{out}{err}");

    let (ok, out, err) =
        output(twostep(dir.path()).args(["access", "check", "http://app.example.test/x/../admin"]), "");
    assert!(ok, "{err}");
    assert!(out.contains("path /admin") && out.contains("rule 1: no match"), "{out}");
    assert!(out.contains("rule 2: matches: deny") && out.contains("decision: deny (rule 2)"), "{out}");
    let (_, out, _) = output(twostep(dir.path()).args(["access", "check", "https://team.example.test/"]), "");
    assert!(out.contains("decision: sign-in needed"), "{out}");
    // A database first: commands on data never create one.
    let (ok, _, err) = output(twostep(dir.path()).arg("migrate"), "");
    assert!(ok, "{err}");
    let (ok, _, err) =
        output(twostep(dir.path()).args(["user", "create", "ada@example.com"]), "correct horse battery staple\n");
    assert!(ok, "{err}");
    let args = ["access", "check", "https://team.example.test/", "--user", "ada@example.com"];
    let (_, out, _) = output(twostep(dir.path()).args(args), "");
    assert!(out.contains("decision: one_factor (rule 6)"), "{out}");
    let args = ["access", "check", "http://printer.lan.example.test/", "--ip", "10.0.0.9"];
    let (_, out, _) = output(twostep(dir.path()).args(args), "");
    assert!(out.contains("decision: bypass (rule 5)"), "{out}");

    for (bad, key) in [
        (
            "policy = \"two_factor\"\n[[access.rules]]\ndomain = [\"x.example.test\"]\npolicy = \"allow\"",
            "access.rules[7].policy",
        ),
        (
            "policy = \"two_factor\"\n[[access.rules]]\ndomain = [\"x.example.test\"]\npath = [\"(\"]\npolicy = \"deny\"",
            "access.rules[7].path",
        ),
    ] {
        let text = config_file().replacen("policy = \"two_factor\"", bad, 1);
        std::fs::write(dir.path().join("twostep.toml"), text).expect("write");
        let (ok, _, err) = output(twostep(dir.path()).args(["config", "check"]), "");
        assert!(!ok && err.contains(key), "{key}: {err}");
    }
    let text = format!("public_url = \"https://auth.example.org\"\n{}", config_file());
    std::fs::write(dir.path().join("twostep.toml"), text).expect("write");
    let (ok, _, err) = output(twostep(dir.path()).args(["config", "check"]), "");
    assert!(!ok && err.contains("access.cookie_domains"), "{err}");
}

async fn a_sign_out_anywhere_ends_access_with_the_next_request(db: Db) {
    let app = spawn(db).await;
    let user = app.user().await;
    let other = app.user().await;
    let url = format!("{APP}/one/x");
    Check::nginx(&url).cookie(&user.token).send(&app).await.assert_status(200);
    // Gone from the database behind this server's back by a hand edit, which
    // announces nothing: the session cache lets it go within CACHE_SECS.
    // (Another instance's sign-out is announced: session_cache.rs.)
    let mut raw = app.raw().await;
    sqlx::query("DELETE FROM sessions").execute(&mut raw).await.expect("delete");
    app.clock.advance(twostep_domain::sessions::cache::CACHE_SECS);
    Check::nginx(&url).cookie(&user.token).send(&app).await.assert_status(401);
    // Sign-out on this instance ends access with the next request.
    let token = app.login(&other.email, &other.password).await.assert_status(200).str("session_token");
    Check::nginx(&url).cookie(&token).send(&app).await.assert_status(200);
    app.post("/api/v1/logout", &json!({}), Some(&token)).await.assert_status(204);
    Check::nginx(&url).cookie(&token).send(&app).await.assert_status(401);
    // Idle expiry too.
    let token = app.login(&other.email, &other.password).await.assert_status(200).str("session_token");
    Check::nginx(&url).cookie(&token).send(&app).await.assert_status(200);
    app.clock.advance(30 * 60);
    Check::nginx(&url).cookie(&token).send(&app).await.assert_status(401);
}

async fn an_account_the_mandate_holds_is_sent_to_enrolment(db: Db) {
    let app = TestApp::spawn_with_resolved(db, |r| {
        r.settings.access = rules();
        r.settings.require_two_factor = true;
    })
    .await;
    let user = app.user().await;
    let login = app.login(&user.email, &user.password).await.assert_status(200);
    assert_eq!(login.str("status"), "enrollment_required");
    let token = login.str("session_token");
    // Even where one factor would do: set-up comes first, as at the portal.
    for path in ["/one/x", "/reports"] {
        let r = Check::nginx(&format!("{APP}{path}")).cookie(&token).send(&app).await.assert_status(401);
        assert_eq!(r.header("location"), format!("{}/security/totp/new", app.url), "{path}");
    }
    Check::nginx(&format!("{APP}/public/x")).cookie(&token).send(&app).await.assert_status(200);
    Check::nginx(&format!("{APP}/admin")).cookie(&token).send(&app).await.assert_status(403);
}
