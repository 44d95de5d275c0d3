//! Forward-auth behind the real proxies: Debian's nginx (`auth_request`)
//! and Caddy (`forward_auth`), each started on a loopback port with a
//! configuration written here (the README's snippets), in front of a tiny
//! upstream app that answers with the headers it received.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use twostep_testkit::{Db, TestApp, User};

/// An upstream app: answers every request with its path and the
/// `Remote-*` headers it was given.
async fn upstream() -> SocketAddr {
    async fn echo(req: axum::extract::Request) -> axum::Json<Value> {
        let h = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
        axum::Json(json!({
            "path": req.uri().path(),
            "remote_user": h("remote-user"),
            "remote_email": h("remote-email"),
            "remote_groups": h("remote-groups"),
        }))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, axum::Router::new().fallback(echo)).await });
    addr
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// The proxy binary, or `None` (a skip, or a failure under CI) when absent.
fn proxy_binary(name: &str, candidates: &[&str]) -> Option<PathBuf> {
    let found = candidates.iter().map(PathBuf::from).find(|p| p.is_file());
    found.or_else(|| twostep_testkit::tool(name).then(|| PathBuf::from(name)))
}

/// A proxy process, stopped with the test.
struct Proxy {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_listening(port: u16, child: &mut Child, log: &Path) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("proxy exited with {status}: {}", std::fs::read_to_string(log).unwrap_or_default());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("proxy did not listen on {port}: {}", std::fs::read_to_string(log).unwrap_or_default());
}

/// The nginx site of the README, on loopback.
pub fn nginx_conf(dir: &Path, port: u16, twostep: &str, upstream: SocketAddr) -> String {
    let d = dir.display();
    format!(
        r#"daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{}}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{port};
    server_name app.example.test;

    location = /internal/twostep-authz {{
      internal;
      proxy_pass {twostep}/api/authz/auth-request;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
      proxy_set_header X-Forwarded-For $remote_addr;
    }}

    location / {{
      auth_request /internal/twostep-authz;
      auth_request_set $twostep_user $upstream_http_remote_user;
      auth_request_set $twostep_email $upstream_http_remote_email;
      auth_request_set $twostep_name $upstream_http_remote_name;
      auth_request_set $twostep_groups $upstream_http_remote_groups;
      auth_request_set $twostep_location $upstream_http_location;
      error_page 401 = @twostep_sign_in;
      # Set on every request, so whatever a client sent is replaced.
      proxy_set_header Remote-User $twostep_user;
      proxy_set_header Remote-Email $twostep_email;
      proxy_set_header Remote-Name $twostep_name;
      proxy_set_header Remote-Groups $twostep_groups;
      proxy_pass http://{upstream};
    }}

    # Browsers are sent to sign in; scripts (no Location) get the 401.
    location @twostep_sign_in {{
      if ($twostep_location) {{
        return 302 $twostep_location;
      }}
      return 401;
    }}
  }}
}}
"#
    )
}

async fn start_nginx(twostep: &str, upstream: SocketAddr) -> Option<Proxy> {
    let bin = proxy_binary("nginx", &["/usr/sbin/nginx"])?;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let conf = dir.path().join("nginx.conf");
    std::fs::write(&conf, nginx_conf(dir.path(), port, twostep, upstream)).expect("write conf");
    let log = dir.path().join("error.log");
    let mut child = Command::new(bin)
        .arg("-p")
        .arg(dir.path())
        .arg("-e")
        .arg(&log)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx starts");
    wait_listening(port, &mut child, &log).await;
    Some(Proxy { child, port, _dir: dir })
}

/// The Caddy site of the README, on loopback.
pub fn caddyfile(port: u16, twostep: &str, upstream: SocketAddr) -> String {
    let twostep = twostep.trim_start_matches("http://");
    format!(
        r"{{
  admin off
  auto_https off
}}
http://app.example.test:{port} {{
  bind 127.0.0.1
  route {{
    # Older Caddy passes client-sent Remote-* on when the check sets none.
    request_header -Remote-User
    request_header -Remote-Email
    request_header -Remote-Name
    request_header -Remote-Groups
    forward_auth {twostep} {{
      uri /api/authz/forward-auth
      copy_headers Remote-User Remote-Email Remote-Name Remote-Groups
    }}
    reverse_proxy {upstream}
  }}
}}
"
    )
}

async fn start_caddy(twostep: &str, upstream: SocketAddr) -> Option<Proxy> {
    let bin = proxy_binary("caddy", &["/usr/bin/caddy"])?;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let conf = dir.path().join("Caddyfile");
    std::fs::write(&conf, caddyfile(port, twostep, upstream)).expect("write conf");
    let log = dir.path().join("caddy.log");
    let out = std::fs::File::create(&log).expect("log");
    let mut child = Command::new(bin)
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(&conf)
        .env("HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path())
        .stdout(Stdio::null())
        .stderr(out)
        .spawn()
        .expect("caddy starts");
    wait_listening(port, &mut child, &log).await;
    Some(Proxy { child, port, _dir: dir })
}

/// A browser-like client that finds app.example.test on loopback.
fn browser(port: u16) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .resolve("app.example.test", SocketAddr::from(([127, 0, 0, 1], port)))
        .build()
        .expect("client")
}

struct Through {
    status: u16,
    location: String,
    body: Value,
}

async fn through(port: u16, method: reqwest::Method, path: &str, token: Option<&str>, html: bool) -> Through {
    let mut req = browser(port)
        .request(method, format!("http://app.example.test:{port}{path}"))
        // A client trying to pass as someone: the proxy must drop this.
        .header("remote-user", "admin@evil.example")
        .header("remote-groups", "Admins")
        // …or to have a bypassed path checked instead of the real one: the
        // proxy sets these itself (the deny and redirect checks below fail otherwise).
        .header("x-original-url", format!("http://app.example.test:{port}/public/spoof"))
        .header("x-forwarded-uri", "/public/spoof")
        .header("x-forwarded-method", "GET");
    if html {
        req = req.header("accept", "text/html,application/xhtml+xml,*/*;q=0.8");
    }
    if let Some(t) = token {
        req = req.header("cookie", format!("twostep_fa={t}"));
    }
    let r = req.send().await.expect("through the proxy");
    let status = r.status().as_u16();
    let location = r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let body = r.json().await.unwrap_or(Value::Null);
    Through { status, location, body }
}

async fn spawn() -> TestApp {
    TestApp::spawn_with_resolved(Db::Sqlite, |r| {
        r.trusted_proxies = twostep_domain::policy::allowlist::parse_ranges("127.0.0.1").expect("ranges");
        r.settings.access = crate::forward_auth::rules();
    })
    .await
}

/// The story the issue asks of every proxy. `redirect` is how the proxy
/// sends a browser to sign in (302 for both: nginx via `error_page`).
async fn story(app: &TestApp, port: u16, strong: &User, full: &str) {
    let get = reqwest::Method::GET;
    // Not signed in: to the sign-in page, with the way back.
    let r = through(port, get.clone(), "/reports?q=1", None, true).await;
    assert_eq!(r.status, 302);
    let back = format!("http://app.example.test:{port}/reports?q=1");
    let enc = url::form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>();
    assert_eq!(r.location, format!("{}/login?rd={enc}", app.url));
    // A script is told 401, not sent to a page.
    assert_eq!(through(port, get.clone(), "/reports", None, false).await.status, 401);
    // bypass: the app answers, and no client-sent identity reaches it.
    let r = through(port, get.clone(), "/public/logo.png", None, true).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["path"], "/public/logo.png");
    for h in ["remote_user", "remote_groups"] {
        assert!(r.body[h].is_null() || r.body[h] == "", "{}", r.body);
    }
    // deny: refused whoever asks.
    assert_eq!(through(port, get.clone(), "/admin", Some(full), true).await.status, 403);
    // two factors: the app gets who it is.
    let r = through(port, get.clone(), "/reports", Some(full), true).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["remote_user"], strong.email.as_str());
    assert_eq!(r.body["remote_email"], strong.email.as_str());
    assert_eq!(r.body["remote_groups"], "Acme", "{}", r.body);
    // one factor: the password is enough; not for two.
    let plain = app.user().await;
    let r = through(port, get.clone(), "/one/x", Some(&plain.token), true).await;
    assert_eq!((r.status, r.body["remote_user"].as_str()), (200, Some(plain.email.as_str())));
    let r = through(port, get.clone(), "/reports", Some(&plain.token), true).await;
    assert_eq!((r.status, r.location), (302, format!("{}/security/totp/new", app.url)));
    // Signing out denies the next request.
    app.post("/api/v1/logout", &json!({}), Some(full)).await.assert_status(204);
    assert_eq!(through(port, get, "/reports", Some(full), true).await.status, 302);
}

async fn signed_in_member(app: &TestApp) -> (User, String) {
    let strong = app.user_with_totp().await;
    app.post("/api/v1/orgs", &json!({"name": "Acme"}), Some(&strong.token)).await.assert_status(201);
    let code = app.code(&strong.secret, 0);
    let full = app.sign_in_with(&strong, "totp", &code).await.assert_status(200).str("session_token");
    (strong, full)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_nginx() {
    let app = spawn().await;
    let Some(nginx) = start_nginx(&app.url, upstream().await).await else { return };
    let (strong, full) = signed_in_member(&app).await;
    story(&app, nginx.port, &strong, &full).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_caddy() {
    let app = spawn().await;
    let Some(caddy) = start_caddy(&app.url, upstream().await).await else { return };
    let (strong, full) = signed_in_member(&app).await;
    story(&app, caddy.port, &strong, &full).await;
    // After a form post, the browser is sent to sign in with a GET (303).
    let r = through(caddy.port, reqwest::Method::POST, "/reports", None, true).await;
    assert_eq!(r.status, 303);
}
