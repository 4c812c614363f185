#![cfg(test)]
//! Config conversion: the example and the embedded default parse, and each
//! kind of error names its key.

use super::*;

const ENV: [(&str, &str); 2] = [
    ("PORTCULLIS_SECRET", "0123456789abcdef0123456789abcdef0123"),
    ("SMTP_PASSWORD", "hunter2"),
];

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml_str(text, "test.toml", &ENV)
}

fn err(text: &str) -> ConfigError {
    match parse(text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e,
    }
}

#[test]
fn the_example_parses_with_every_key() {
    let c = parse(include_str!("../../gateway.toml.example")).unwrap();
    assert_eq!(c.server.listen, Some("0.0.0.0:8080".parse().unwrap()));
    assert_eq!(c.server.public_url.scheme, Scheme::Https);
    assert_eq!(c.server.public_url.host, "login.example.com");
    assert_eq!(c.session.lifetime, Duration::from_secs(7 * 86_400));
    assert!(c.session.secret.is_some());
    assert_eq!(c.login.address_rate.count, 5);
    assert!(
        matches!(c.mail.transport, MailTransport::Smtp(ref s) if s.password.is_some() && s.port == 587)
    );
    assert!(matches!(c.store, StoreConfig::Redis { .. }));
    assert_eq!(c.routes.len(), 4);
    assert_eq!(
        c.routes[3].upstream.to_string(),
        "https://10.0.0.5:3000,https://10.0.0.6:3000"
    );
    assert!(c.routes[3].forward.is_some());
    assert_eq!(c.routes[1].path, "/admin");
    let allows = |email: &str| c.routes[1].allow.allows(email, c.groups.of(email));
    assert!(allows("ops@example.com"));
    assert!(allows("x@sre.example.com"));
    assert!(!allows("dev@example.com"));
    assert_eq!(c.routes[2].access, Access::Public);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn the_embedded_default_parses() {
    let c = Config::from_toml_str(EMBEDDED_DEFAULT, EMBEDDED_NAME, &[("X", "y")]).unwrap();
    assert_eq!(c.server.listen, Some("127.0.0.1:8080".parse().unwrap()));
    assert!(c.routes.iter().all(|r| r.upstream == Upstream::Demo));
    assert!(matches!(c.store, StoreConfig::Memory));
    assert!(c.session.secret.is_none());
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
}

#[test]
fn unknown_keys_are_named_with_their_section_and_line() {
    let e = err("[server]\nlisten = \"127.0.0.1:1\"\nlisen = \"x\"\n");
    assert!(e.names("server.lisen"), "{e}");
    assert_eq!(e.problems[0].line, Some(3));
    assert!(
        e.to_string()
            .starts_with("test.toml:3: server.lisen: unknown field `lisen`"),
        "{e}"
    );
    let e = err("[store]\nbackend = \"redis\"\nurll = \"redis://x\"\n");
    assert_eq!(e.problems.len(), 1, "{e}");
    assert_eq!(e.problems[0].key, "store.urll", "{e}");
    assert_eq!(e.problems[0].line, Some(3));
    // Deeper tables and arrays of tables too.
    let e = err("[mail.smtp]\nhots = \"h\"\n");
    assert_eq!(e.problems[0].key, "mail.smtp.hots", "{e}");
    let e = err("[[route]]\npath = \"/\"\n[[route]]\npaht = \"/a\"\n");
    assert_eq!(e.problems[0].key, "route[1].paht", "{e}");
    // An unknown table is named as it is.
    let e = err("[sesion]\nlifetime = \"1d\"\n");
    assert!(e.names("sesion"), "{e}");
}

#[test]
fn an_unused_smtp_table_is_checked_too() {
    // transport = "console": the [mail.smtp] table is not used, and its
    // mistakes are still errors, named by key.
    let e = err("[mail]\ntransport = \"console\"\n[mail.smtp]\nhost = \"h\"\nport = 0\n");
    assert_eq!(
        e.to_string(),
        "test.toml: mail.smtp.port: 0 is out of range (1 to 65535)"
    );
    let e = err("[mail]\ntransport = \"file\"\n[mail.smtp]\nport = 25\n");
    assert_eq!(e.to_string(), "test.toml: mail.smtp.host: is missing");
    let e = err("[mail.smtp]\nhost = \"h\"\npassword_env = \"NOT_SET_ANYWHERE\"\n");
    assert!(e.names("mail.smtp.password_env"), "{e}");
    // A valid unused table is fine, and the transport stays the console.
    let c = parse("[mail]\ntransport = \"console\"\n[mail.smtp]\nhost = \"h\"\n").unwrap();
    assert!(matches!(c.mail.transport, MailTransport::Console { .. }));
}

#[test]
fn syntax_errors_carry_the_line() {
    let e = err("[server]\nlisten = \n");
    assert_eq!(e.problems[0].line, Some(2), "{e}");
}

#[test]
fn each_value_error_names_its_key() {
    let cases: &[(&str, &str)] = &[
        ("[server]\nlisten = \"nope\"", "server.listen"),
        ("[server]\ntls_listen = \"127.0.0.1:8443\"", "server.tls_cert"),
        ("[server]\npublic_url = \"ftp://x\"", "server.public_url"),
        ("[server]\npublic_url = \"https://x.example/path\"", "server.public_url"),
        ("[server]\ntrusted_proxies = [\"10.0.0.0/33\"]", "server.trusted_proxies[0]"),
        ("[server]\nmax_header_count = 0", "server.max_header_count"),
        ("[server]\nheader_read_timeout = \"10\"", "server.header_read_timeout"),
        ("[session]\nlifetime = \"7w\"", "session.lifetime"),
        ("[session]\nsecret_env = \"NOT_SET_ANYWHERE\"", "session.secret_env"),
        ("[session]\nsecret_file = \"/nonexistent/secret\"", "session.secret_file"),
        ("[session]\ncookie_domain = \"localhost\"", "session.cookie_domain"),
        ("[login]\naddress_rate = \"5 per minute\"", "login.address_rate"),
        ("[login]\nallow_emails = [\"a@b.com, c@d.com\"]", "login.allow_emails[0]"),
        ("[login]\nallow_domains = [\"https://x.com\"]", "login.allow_domains[0]"),
        ("[mail]\ntransport = \"pigeon\"", "mail.transport"),
        ("[mail]\ntransport = \"smtp\"", "mail.smtp"),
        ("[mail]\ntransport = \"smtp\"\n[mail.smtp]\nport = 25", "mail.smtp.host"),
        ("[mail]\ntransport = \"smtp\"\n[mail.smtp]\nhost = \"h\"\ntls = \"ssl\"", "mail.smtp.tls"),
        ("[mail]\ntransport = \"smtp\"\n[mail.smtp]\nhost = \"h\"\npassword_env = \"SMTP_PASSWORD\"", "mail.smtp.username"),
        ("[store]\nbackend = \"postgres\"", "store.backend"),
        ("[store]\nbackend = \"redis\"\nurl = \"http://x\"", "store.url"),
        ("[store]\nbackend = \"redis\"\nurl = \"rediss://x:6380/0#insecure\"", "store.url"),
        ("[store]\nbackend = \"redis\"\nmode = \"sentinel\"\nurls = [\"redis://x:26379\"]", "store.sentinel_master"),
        ("[store]\nbackend = \"redis\"\nurl = \"redis://x:6379/db\"", "store.url"),
        ("[ui]\naccent = \"blue\"", "ui.accent"),
        ("[ui]\naccent = \"#12345\"", "ui.accent"),
        ("[ui]\ntitle = \" \"", "ui.title"),
        ("[ui]\nlogo = \"https://cdn.example/logo.png\"", "ui.logo"),
        ("[ui]\nlogo = \"//cdn.example/logo.png\"", "ui.logo"),
        ("[ui]\nlogo_file = \"/nonexistent/logo.png\"", "ui.logo_file"),
        ("[ui]\nlogo_file = \"/etc/hostname\"", "ui.logo_file"),
        ("[ui]\ntemplates = \"/nonexistent/templates\"", "ui.templates"),
        ("[[route]]\nupstream = \"ftp://10.0.0.1\"", "route[0].upstream"),
        ("[[route]]\nupstream = \"http://10.0.0.1/base\"", "route[0].upstream"),
        ("[[route]]\nupstream = \"demo\"\npath = \"app\"", "route[0].path"),
        ("[[route]]\nupstream = \"demo\"\npath = \"/a/../b\"", "route[0].path"),
        ("[[route]]\nupstream = \"demo\"\nhost = \"https://a.example\"", "route[0].host"),
        ("[[route]]\nupstream = \"demo\"\naccess = \"open\"", "route[0].access"),
        ("[[route]]\nupstream = \"demo\"\naccess = \"public\"\nallow_emails = [\"a@b.com\"]", "route[0].access"),
        ("[[route]]\nupstream = \"demo\"\ntimeout = \"0s\"", "route[0].timeout"),
        ("[[route]]\nupstream = \"demo\"\n[[route]]\nupstream = \"demo\"", "route[1].path"),
    ];
    for (text, key) in cases {
        let e = err(text);
        assert!(e.names(key), "{text:?} should name {key}, got: {e}");
        assert!(e.to_string().contains(key), "{e}");
    }
}

#[test]
fn a_route_without_an_upstream_answers_forward_auth_only() {
    let env = [("S", "0123456789abcdef0123456789abcdef0123")];
    let text =
        "[session]\nsecret_env = \"S\"\n[[route]]\nhost = \"app.example.com\"\npath = \"/\"\n";
    let c = Config::from_toml_str(text, "t.toml", &env).unwrap();
    assert_eq!(c.routes[0].upstream, Upstream::None);
    assert_eq!(c.routes[0].upstream.to_string(), "none (forward-auth only)");
}

#[test]
fn every_problem_is_reported_at_once() {
    let e = err("[server]\nlisten = \"x\"\n[session]\nlifetime = \"y\"\n[[route]]\npath = \"/\"\nupstream = \"ftp://x\"\n");
    assert!(
        e.names("server.listen") && e.names("session.lifetime") && e.names("route[0].upstream"),
        "{e}"
    );
    assert_eq!(e.problems.len(), 3, "{e}");
}

#[test]
fn short_secrets_are_refused() {
    let e = Config::from_toml_str(
        "[session]\nsecret_env = \"S\"\n",
        "t.toml",
        &[("S", "short")],
    )
    .unwrap_err();
    assert!(e.names("session.secret_env"), "{e}");
}

#[test]
fn public_url_origins() {
    let c = parse("[server]\npublic_url = \"http://localhost:8080\"\n").unwrap();
    assert_eq!(c.server.public_url.origin(), "http://localhost:8080");
    assert_eq!(
        c.server.public_url.origin_for("127.0.0.1"),
        "http://127.0.0.1:8080"
    );
    assert_eq!(
        c.server.public_url.origin_for("a.test:9000"),
        "http://a.test:9000"
    );
    let c = parse("[server]\npublic_url = \"https://Login.Example.com/\"\n").unwrap();
    assert_eq!(c.server.public_url.origin(), "https://login.example.com");
}

#[test]
fn ui_defaults_look_after_themselves() {
    let c = parse("").unwrap();
    assert_eq!(c.ui.title, "Portcullis");
    assert_eq!(c.ui.accent, crate::theme::DEFAULT_ACCENT);
    assert_eq!(c.ui.logo, None);
    assert_eq!(c.ui.templates_dir, None);
    assert!(c.ui.templates.is_empty());
    let c = parse("[ui]\nlogo = \"/static/logo.svg\"\naccent = \"#FD0\"").unwrap();
    assert_eq!(c.ui.logo.as_deref(), Some("/static/logo.svg"));
    assert_eq!(c.ui.accent, "#FD0");
}

#[test]
fn ui_logo_file_becomes_a_data_url() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logo.svg");
    std::fs::write(&path, "<svg/>").unwrap();
    let c = parse(&format!("[ui]\nlogo_file = '{}'", path.display())).unwrap();
    assert_eq!(
        c.ui.logo.as_deref(),
        Some("data:image/svg+xml;base64,PHN2Zy8+")
    );
    let e = err(&format!(
        "[ui]\nlogo = \"/x.png\"\nlogo_file = '{}'",
        path.display()
    ));
    assert!(e.names("ui.logo_file"), "{e}");
    let big = dir.path().join("big.png");
    std::fs::write(&big, vec![0u8; 100 * 1024 + 1]).unwrap();
    let e = err(&format!("[ui]\nlogo_file = '{}'", big.display()));
    assert!(e.to_string().contains("the limit is 102400"), "{e}");
}

#[test]
fn ui_templates_override_and_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good =
        "<h1>{{site}}</h1>{{notice}}<input type=\"hidden\" name=\"csrf\" value=\"{{csrf}}\">{{rd}}";
    std::fs::write(d.join("login.html"), good).unwrap();
    std::fs::write(d.join("style.css"), "body { color: red }").unwrap();
    std::fs::write(d.join("README.txt"), "notes for the team").unwrap();
    let c = parse(&format!("[ui]\ntemplates = '{}'", d.display())).unwrap();
    assert_eq!(c.ui.templates_dir.as_deref(), Some(d));
    assert_eq!(
        c.ui.templates.keys().collect::<Vec<_>>(),
        ["login.html", "style.css"]
    );
    assert_eq!(c.ui.templates["login.html"], good);

    // A required placeholder missing, an unknown one, an unknown file name,
    // a file that is not UTF-8: each is named, all at once.
    std::fs::write(d.join("forbidden.html"), "<p>{{email}}</p>").unwrap();
    std::fs::write(d.join("error.html"), "{{message}} {{mesage}}").unwrap();
    std::fs::write(d.join("sign_in.html"), "").unwrap();
    std::fs::write(d.join("signed_out.html"), [0xff, 0xfe]).unwrap();
    let e = err(&format!("[ui]\ntemplates = '{}'", d.display()));
    assert_eq!(e.problems.len(), 4, "{e}");
    assert!(e.problems.iter().all(|p| p.key == "ui.templates"), "{e}");
    let text = e.to_string();
    for expected in [
        "forbidden.html: the required placeholder {{csrf}} is missing",
        "error.html: {{mesage}} is not one of its placeholders",
        "sign_in.html is not the name of a template",
        "signed_out.html cannot be read",
    ] {
        assert!(text.contains(expected), "{expected:?} in:\n{text}");
    }
}

#[test]
fn mail_files_are_flushed_to_disk_only_when_asked() {
    let base = "[mail]\ntransport = \"file\"\n[mail.file]\ndir = \"/tmp/outbox\"\n";
    let fsync_of = |text: &str| match parse(text).unwrap().mail.transport {
        MailTransport::File { fsync, .. } => fsync,
        other => panic!("not the file transport: {other:?}"),
    };
    assert!(!fsync_of(base));
    assert!(fsync_of(&format!("{base}fsync = true")));
    assert!(!fsync_of(&format!("{base}fsync = false")));
    let e = err(&format!("{base}fsync = \"yes\""));
    assert!(e.names("mail.file.fsync"), "{e}");
    assert_eq!(e.problems[0].line, Some(5), "{e}");
}

#[test]
fn a_value_of_the_wrong_type_names_its_key() {
    let cases: &[(&str, &str, usize)] = &[
        (
            "[mail]\nqueue_capacity = \"many\"\n",
            "mail.queue_capacity",
            2,
        ),
        (
            "[[route]]\nupstream = \"demo\"\n[[route]]\nupstream = \"demo\"\npath = 5\n",
            "route[1].path",
            5,
        ),
        (
            "[login]\nallow_emails = \"a@b.com\"\n",
            "login.allow_emails",
            2,
        ),
    ];
    for (text, key, line) in cases {
        let e = err(text);
        assert!(e.names(key), "{text:?} should name {key}, got: {e}");
        assert_eq!(e.problems[0].line, Some(*line), "{e}");
    }
}

const SECRET: &str = "[session]\nsecret_env = \"PORTCULLIS_SECRET\"\n";

#[test]
fn groups_resolve_from_the_table_and_the_file() {
    let dir = std::env::temp_dir().join(format!("pc-groups-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("groups.toml");
    std::fs::write(&file, "dev = [\"a@example.com\", \"@dev.example.com\"]\n").unwrap();
    let text = format!(
        "{SECRET}[login]\ngroups_file = {file:?}\n[groups]\nops = [\"A@Example.com\", \"@ops.example.com\"]\n\
         [[route]]\npath = \"/\"\nupstream = \"demo\"\nallow_groups = [\"ops\", \"dev\"]\n"
    );
    let c = parse(&text).unwrap();
    assert_eq!(c.groups.names(), ["dev", "ops"]);
    assert_eq!(c.groups.of("a@example.com").unwrap().header(), "dev,ops");
    assert_eq!(c.groups.of("z@ops.example.com").unwrap().header(), "ops");
    assert_eq!(c.groups.of("z@dev.example.com").unwrap().header(), "dev");
    let allow = &c.routes[0].allow;
    assert!(allow.allows("z@dev.example.com", c.groups.of("z@dev.example.com")));
    assert!(!allow.allows("z@example.com", c.groups.of("z@example.com")));

    // A group in both places, and a bad member in the file.
    std::fs::write(
        &file,
        "ops = [\"b@example.com\"]\nqa = [\"not an address\"]\n",
    )
    .unwrap();
    let e = err(&text);
    assert_eq!(e.problems.len(), 3, "{e}");
    assert!(e.names("login.groups_file"), "{e}");
    let shown = e.to_string();
    assert!(
        shown.contains("group \"ops\" is also defined in [groups]"),
        "{e}"
    );
    assert!(
        shown.contains(": qa[0]: \"not an address\" is not one email address"),
        "{e}"
    );
    // `dev` is gone from the file: the route's reference is named.
    assert!(e.names("route[0].allow_groups[1]"), "{e}");
    assert!(shown.contains("no group \"dev\""), "{e}");
    std::fs::remove_file(&file).unwrap();
    let e = err(&text);
    assert!(e.names("login.groups_file"), "{e}");
    assert!(e.to_string().contains("cannot read"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn group_errors_name_their_key() {
    let e = err(&format!(
        "{SECRET}[groups]\nops = [\"a@example.com\", \"nobody\", \"@bad domain\", \"@x.example:80\"]\n\
         empty = []\n\"a,b\" = [\"a@example.com\"]\n\
         [[route]]\npath = \"/\"\nupstream = \"demo\"\nallow_groups = [\"ops\", \"x\"]\n\
         [[route]]\npath = \"/p\"\nupstream = \"demo\"\naccess = \"public\"\nallow_groups = [\"ops\"]\n"
    ));
    for key in [
        "groups.ops[1]",
        "groups.ops[2]",
        "groups.ops[3]",
        "groups.empty",
        "groups.a,b",
        "route[0].allow_groups[1]",
        "route[1].access",
    ] {
        assert!(e.names(key), "{key}: {e}");
    }
    assert_eq!(e.problems.len(), 7, "{e}");
    assert!(e
        .to_string()
        .contains("route[0].allow_groups[1]: no group \"x\""));
}

#[test]
fn route_rule_errors_name_their_key() {
    let route = |extra: &str| {
        let path = if extra.starts_with("path") {
            ""
        } else {
            "path = \"/a\"\n"
        };
        format!("[[route]]\n{path}upstream = \"demo\"\n{extra}\n")
    };
    let e = err(&format!(
        "{SECRET}{}{}{}{}{}{}",
        route("methods = [\"GET\", \"HEAD\"]\naccess = \"public\""),
        route("methods = [\"post\", \"head\"]"),
        route(""),
        route(""),
        route("path = \"/b\"\nmethods = []\nbypass_networks = [\"10.0.0.0/8\", \"nope\"]"),
        route(
            "path = \"/c\"\nmethods = [\"G E T\"]\ndeny = true\nbypass_networks = [\"10.0.0.1\"]"
        ),
    ));
    for key in [
        "route[1].methods",
        "route[3].path",
        "route[4].methods",
        "route[4].bypass_networks[1]",
        "route[5].methods[0]",
        "route[5].bypass_networks",
    ] {
        assert!(e.names(key), "{key}: {e}");
    }
    assert_eq!(e.problems.len(), 6, "{e}");
    let shown = e.to_string();
    assert!(
        shown.contains("route[1].methods: HEAD is also in route[0]'s"),
        "{e}"
    );
    assert!(shown.contains("route[3].path: route[2] already has host (any) and path \"/a\""));
    // Disjoint methods on one place, and one route without: fine.
    let c = parse(&format!(
        "{SECRET}{}{}{}",
        route("methods = [\"get\", \"HEAD\"]\naccess = \"public\""),
        route("methods = [\"POST\"]\nbypass_networks = [\"10.0.0.0/8\", \"192.0.2.7\"]"),
        route("deny = true"),
    ))
    .unwrap();
    assert_eq!(
        c.routes[0].methods,
        Some(vec![http::Method::GET, http::Method::HEAD])
    );
    assert_eq!(c.routes[1].bypass_networks.len(), 2);
    assert!(c.routes[2].deny);
}
