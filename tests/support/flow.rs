//! The sign-in flow as tests drive it: one environment (gateway, echo
//! upstream, SMTP server, optionally Redis) built from a small set of
//! options, and the steps a person takes (ask for a link, read the mail,
//! open the link, press the button). Also the corpus file reader shared by
//! the security suite.
//!
//! Owns nothing of the gateway; everything goes over HTTP and SMTP.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::browser::{Browser, Page};
use super::gateway::TestGateway;
use super::redis::RedisServer;
use super::smtp::{Script, SmtpServer};
use super::upstream::Upstream;

/// What a test changes in the default configuration. Lines given for a
/// section replace the defaults with the same key.
#[derive(Default)]
pub struct Opts<'a> {
    pub server: &'a str,
    pub session: &'a str,
    pub login: &'a str,
    pub mail: &'a str,
    pub smtp_timeout: Option<&'a str>,
    /// Extra `[[route]]` tables (`{up}` becomes the upstream URL).
    pub routes: &'a str,
    /// Replaces the three default routes.
    pub only_routes: Option<&'a str>,
    pub redis: Option<Arc<RedisServer>>,
    pub script: Option<Script>,
    pub tarpit: bool,
}

pub struct Env {
    pub gw: TestGateway,
    pub up: Upstream,
    pub smtp: SmtpServer,
    pub redis: Option<Arc<RedisServer>>,
    pub origin: String,
    /// The key prefix used in Redis (when there is one).
    pub prefix: String,
}

/// A key prefix no other test uses.
pub fn unique(name: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "sec{}-{}-{name}:",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn merge(defaults: &[&str], given: &str) -> String {
    let mut out = given.to_string();
    for line in defaults {
        let key = line.split(' ').next().unwrap_or("");
        let set = given
            .lines()
            .any(|l| l.trim_start().starts_with(&format!("{key} ")));
        if !set {
            out.push('\n');
            out.push_str(line);
        }
    }
    out
}

pub fn config_text(o: &Opts<'_>, up: &str, smtp_port: u16, prefix: &str) -> String {
    let server = merge(
        &[
            "listen = \"127.0.0.1:$PORT\"",
            "public_url = \"http://127.0.0.1:$PORT\"",
            "header_read_timeout = \"2s\"",
        ],
        o.server,
    );
    let login = merge(
        &[
            "allow_domains = [\"example.com\"]",
            "resend_delay = \"0s\"",
            "address_rate = \"100/15m\"",
            "ip_rate = \"1000/15m\"",
        ],
        o.login,
    );
    let store = match &o.redis {
        Some(r) => format!(
            "[store]\nbackend = \"redis\"\nurl = \"{}\"\nkey_prefix = \"{prefix}\"\nconnect_timeout = \"500ms\"\nresponse_timeout = \"300ms\"\n",
            r.url()
        ),
        None => "[store]\nbackend = \"memory\"\n".into(),
    };
    let routes = o.only_routes.unwrap_or(
        "[[route]]\npath = \"/\"\nupstream = \"{up}\"\n\n\
         [[route]]\npath = \"/public\"\nupstream = \"{up}\"\naccess = \"public\"\n\n\
         [[route]]\npath = \"/admin\"\nupstream = \"{up}\"\nallow_emails = [\"boss@example.com\"]\n",
    );
    format!(
        "[server]\n{server}\n\n[session]\nsecret_env = \"PORTCULLIS_SECRET\"\n{session}\n\n\
         [login]\n{login}\n\n[mail]\nfrom = \"Portcullis <login@example.com>\"\ntransport = \"smtp\"\n{mail}\n\
         [mail.smtp]\nhost = \"127.0.0.1\"\nport = {smtp_port}\ntls = \"none\"\ntimeout = \"{timeout}\"\n\n\
         {store}\n[ui]\ntitle = \"Test Tools\"\n\n{routes}\n{extra}\n",
        session = o.session,
        mail = o.mail,
        timeout = o.smtp_timeout.unwrap_or("5s"),
        routes = routes.replace("{up}", up),
        extra = o.routes.replace("{up}", up),
    )
}

pub async fn env(o: Opts<'_>) -> Env {
    let up = Upstream::start().await;
    let smtp = SmtpServer::start(o.script.unwrap_or(Script::Accept));
    if o.tarpit {
        smtp.set_tarpit(true);
    }
    let prefix = unique("env");
    let gw = TestGateway::start(&config_text(&o, &up.url(), smtp.port(), &prefix)).await;
    let origin = gw.origin();
    Env {
        gw,
        up,
        smtp,
        redis: o.redis,
        origin,
        prefix,
    }
}

impl Env {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    /// Mails received for `to`.
    pub fn mails_to(&self, to: &str) -> usize {
        self.smtp
            .received()
            .iter()
            .filter(|m| m.to.iter().any(|t| t == to))
            .count()
    }
}

pub fn urlenc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The token and the code of mail number `nth` (from 1) to `to`.
pub async fn mail_for(smtp: &SmtpServer, to: &str, nth: usize) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mails: Vec<_> = smtp
            .received()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t == to))
            .collect();
        if mails.len() >= nth {
            let text = mails[nth - 1].text().unwrap();
            let marker = "/.portcullis/verify?token=";
            let start = text.find(marker).unwrap() + marker.len();
            let token: String = text[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            let code = text
                .split_whitespace()
                .find(|w| {
                    w.len() == 9
                        && w.as_bytes()[4] == b'-'
                        && w.chars()
                            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-')
                })
                .unwrap()
                .to_string();
            return (token, code);
        }
        assert!(Instant::now() < deadline, "no mail {nth} for {to}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The CSRF field of a fresh sign-in page (sets the CSRF cookie).
pub async fn page_csrf(b: &mut Browser, origin: &str) -> String {
    b.get(&format!("{origin}/.portcullis/login"))
        .await
        .field("csrf")
        .unwrap()
}

/// GET the sign-in page and POST the address: the "check your email" page.
pub async fn ask_link(b: &mut Browser, origin: &str, email: &str, rd: &str) -> Page {
    let page = b
        .get(&format!("{origin}/.portcullis/login?rd={}", urlenc(rd)))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = page.field("csrf").unwrap();
    b.post(
        origin,
        "/.portcullis/login",
        &[("email", email), ("rd", rd), ("csrf", &csrf)],
    )
    .await
}

/// Opens the link in `b` and presses the button: the POST /verify answer.
pub async fn confirm(b: &mut Browser, origin: &str, token: &str) -> Page {
    let page = b
        .get(&format!("{origin}/.portcullis/verify?token={token}"))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = page
        .field("csrf")
        .expect("the asking browser gets a button");
    b.post(
        origin,
        "/.portcullis/verify",
        &[("token", token), ("csrf", &csrf)],
    )
    .await
}

/// The whole sign-in in one browser; returns the POST /verify answer.
pub async fn sign_in(e: &Env, b: &mut Browser, email: &str, rd: &str, nth_mail: usize) -> Page {
    let page = ask_link(b, &e.origin, email, rd).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let (token, _) = mail_for(&e.smtp, &email.trim().to_lowercase(), nth_mail).await;
    confirm(b, &e.origin, &token).await
}

/// Signs `email` in (its first mail) and returns the browser's cookies as
/// a raw `Cookie:` header line, for raw-socket requests.
pub async fn cookie_line(e: &Env, email: &str) -> String {
    let mut b = Browser::new();
    let done = sign_in(e, &mut b, email, "/", 1).await;
    assert_eq!(done.status, 303, "{}", done.body);
    format!("Cookie: {}\r\n", cookie_header(&b))
}

/// The browser's cookies as one `Cookie` header value.
pub fn cookie_header(b: &Browser) -> String {
    b.jar
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A corpus file's lines (comments and empty lines skipped), tokens
/// expanded: `<TAB> <LF> <CR> <VT> <NUL> <SP>` and `<A:n>`.
pub fn corpus(name: &str) -> Vec<String> {
    let path = format!("{}/tests/corpus/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path)
        .unwrap()
        .split('\n')
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(expand)
        .collect()
}

/// A two-column corpus file (`input<TAB>expected`), split first, then
/// each side expanded.
pub fn corpus_pairs(name: &str) -> Vec<(String, String)> {
    let path = format!("{}/tests/corpus/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path)
        .unwrap()
        .split('\n')
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (a, b) = l.split_once('\t').unwrap();
            (expand(a), expand(b))
        })
        .collect()
}

pub fn expand(s: &str) -> String {
    let mut out = s
        .replace("<TAB>", "\t")
        .replace("<LF>", "\n")
        .replace("<CR>", "\r")
        .replace("<VT>", "\x0b")
        .replace("<NUL>", "\0")
        .replace("<SP>", " ");
    while let Some(start) = out.find("<A:") {
        let end = start + out[start..].find('>').unwrap();
        let n: usize = out[start + 3..end].parse().unwrap();
        out.replace_range(start..=end, &"a".repeat(n));
    }
    out
}

/// One round of percent-decoding (bad escapes kept, invalid UTF-8 lossy).
pub fn percent_decode_once(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A GET like [`Browser::get`] with extra request headers (e.g.
/// `X-Forwarded-Proto` from a trusted proxy); cookies go both ways.
pub async fn get_with(b: &mut Browser, url: &str, headers: &[(&str, &str)]) -> Page {
    let mut req = super::client::http()
        .get(url)
        .header("accept", "text/html,*/*;q=0.8");
    if !b.jar.is_empty() {
        req = req.header("cookie", cookie_header(b));
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    for v in headers.get_all("set-cookie") {
        let s = v.to_str().unwrap();
        let (name, value) = s.split(';').next().unwrap().split_once('=').unwrap();
        if s.contains("Max-Age=0") || value.is_empty() {
            b.jar.remove(name.trim());
        } else {
            b.jar.insert(name.trim().to_string(), value.to_string());
        }
    }
    let body = resp.text().await.unwrap();
    Page {
        status,
        headers,
        body,
    }
}
