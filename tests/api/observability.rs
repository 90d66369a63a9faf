//! `deploy/observability/`: the alert rules (`promtool check rules`, `promtool test
//! rules`), the scrape configurations (`promtool check config`), and a real Prometheus
//! scraping a running monolith, over whose series every query of the Grafana dashboard
//! returns data. Needs Debian's `prometheus` package (promtool and prometheus); under
//! `CI=true` its absence fails the test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{Host, TestApp, BOOTSTRAP_ADMIN};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Prometheus tools, or `None` (outside CI) when they are not installed.
fn tools() -> Option<()> {
    let found = ["promtool", "prometheus"].iter().all(|t| {
        Command::new(t)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if !found {
        assert!(
            std::env::var("CI").is_err(),
            "CI: promtool and prometheus are missing (apt-get install prometheus)"
        );
        eprintln!("skipping: no promtool/prometheus");
        return None;
    }
    Some(())
}

fn promtool(args: &[&str]) -> (bool, String) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(root().join("deploy/observability"))
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn the_alert_rules_check_and_pass_their_unit_tests() {
    let Some(()) = tools() else { return };
    let (ok, out) = promtool(&["check", "rules", "rules/emporium.yml"]);
    assert!(ok, "{out}");
    let (ok, out) = promtool(&["test", "rules", "rules/emporium.test.yml"]);
    assert!(ok, "{out}");
    for config in ["prometheus/monolith.yml", "prometheus/compose.yml"] {
        let (ok, out) = promtool(&["check", "config", config]);
        assert!(ok, "{config}: {out}");
    }
    // Debian's Prometheus is built without Kubernetes discovery: the Kubernetes
    // configuration is checked with a static target in its place.
    let k8s =
        std::fs::read_to_string(root().join("deploy/observability/prometheus/kubernetes.yml"))
            .unwrap();
    let start = k8s.find("    kubernetes_sd_configs:").unwrap();
    let end = k8s.find("    relabel_configs:").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let copy = format!(
        "{}    static_configs:\n      - targets: [\"emporium:9090\"]\n{}",
        &k8s[..start],
        &k8s[end..]
    )
    .replace(
        "../rules/emporium.yml",
        &root()
            .join("deploy/observability/rules/emporium.yml")
            .display()
            .to_string(),
    );
    let path = dir.path().join("kubernetes.yml");
    std::fs::write(&path, copy).unwrap();
    let (ok, out) = promtool(&["check", "config", path.to_str().unwrap()]);
    assert!(ok, "kubernetes.yml: {out}");
}

/// Listening TCP ports of a process, from `/proc` (Prometheus binds port 0 and does not say
/// which port it got).
fn listening_ports(pid: u32) -> Vec<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter_map(|l| {
                    l.to_str()?
                        .strip_prefix("socket:[")?
                        .strip_suffix(']')
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default();
    let mut ports = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in std::fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
        {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 9 && f[3] == "0A" && inodes.iter().any(|i| i == f[9]) {
                if let Some(port) = f[1]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
                {
                    ports.push(port);
                }
            }
        }
    }
    ports
}

struct Prometheus {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn prometheus(target: &str) -> Prometheus {
    let dir = tempfile::tempdir().unwrap();
    let rules = root().join("deploy/observability/rules/emporium.yml");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: emporium\n    static_configs:\n      - targets: [\"{target}\"]\n",
        rules.display()
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let child = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.path().join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg("--web.listen-address=127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
        .spawn()
        .unwrap();
    let log = dir.path().join("log");
    // Killed and waited for when dropped, including by the panic below.
    let mut prom = Prometheus {
        child,
        base: String::new(),
        _dir: dir,
    };
    let pid = prom.child.id();
    for _ in 0..200 {
        if let Some(port) = listening_ports(pid).first() {
            let base = format!("http://127.0.0.1:{port}");
            if reqwest::get(format!("{base}/-/ready"))
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                prom.base = base;
                return prom;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "prometheus did not start: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

impl Prometheus {
    async fn query(&self, expr: &str) -> Vec<Value> {
        let res: Value = reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.base))
            .query(&[("query", expr)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(res["status"], "success", "{expr}: {res}");
        res["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// The running monolith as a `TestApp`, so the usual helpers drive it.
fn app_on(server: crate::split::Process, base: &str, dir: &Path) -> TestApp {
    let port = base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap();
    let mut config = emporium::config::Config::local(dir.to_path_buf());
    config.bootstrap_admin = Some((BOOTSTRAP_ADMIN.0.to_owned(), BOOTSTRAP_ADMIN.1.to_owned()));
    TestApp {
        address: base.to_owned(),
        port,
        client: reqwest::Client::new(),
        backend: platform::testing::TestBackend::Sqlite,
        config,
        host: Host::Split(crate::split::Deployment {
            processes: vec![server],
            ports: BTreeMap::from([("monolith".to_owned(), port)]),
        }),
        bus: Arc::new(bus::MemoryBus::new()),
        _dir: Arc::new(tempfile::tempdir().unwrap()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_a_monolith_and_every_dashboard_query_returns_data() {
    let Some(()) = tools() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (server, base) = crate::operations::ready_process(
        dir.path(),
        &[
            ("EMPORIUM_OPS_LISTEN", "127.0.0.1:0"),
            ("EMPORIUM_BOOTSTRAP_ADMIN_EMAIL", BOOTSTRAP_ADMIN.0),
            ("EMPORIUM_BOOTSTRAP_ADMIN_PASSWORD", BOOTSTRAP_ADMIN.1),
        ],
    )
    .await;
    let ops_port = server
        .log_text()
        .lines()
        .find_map(|line| {
            let v: Value = serde_json::from_str(line).ok()?;
            (v["fields"]["message"] == "operations listener bound")
                .then(|| v["fields"]["port"].as_u64())
                .flatten()
        })
        .expect("the operations port is logged");
    let app = app_on(server, &base, dir.path());
    let prom = prometheus(&format!("127.0.0.1:{ops_port}")).await;

    // Prometheus hands its first targets to the scraper a few seconds after it starts:
    // traffic starts once the monolith has been scraped, so rates see it happen.
    app.eventually("the first scrape", 30, || async {
        (!prom.query(r#"up{job="emporium"} == 1"#).await.is_empty()).then_some(())
    })
    .await;
    let admin = app.admin().await;
    let product = app.sellable(&admin.access_token, "PROM-1", 700, 100).await;
    let customer = app.customer().await;
    for _ in 0..2 {
        let order = app
            .place_order(&customer.access_token, &product, 1, "tok_visa")
            .await;
        app.order_reaches(&customer.access_token, &order, "confirmed")
            .await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("deploy/observability/grafana/emporium.json"))
            .unwrap(),
    )
    .unwrap();
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| {
            t["expr"]
                .as_str()
                .unwrap()
                .replace("$job", ".*")
                .replace("$__rate_interval", "1m")
                .replace("$__range", "5m")
        })
        .collect();
    assert!(exprs.len() >= 12);
    let mut empty = Vec::new();
    for _ in 0..30 {
        empty.clear();
        for expr in &exprs {
            if prom.query(expr).await.is_empty() {
                empty.push(expr.clone());
            }
        }
        if empty.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(
        empty.is_empty(),
        "dashboard queries without data:\n{}",
        empty.join("\n")
    );

    // What the panels show is what happened: two orders placed and confirmed, nothing
    // stuck, every dependency up, and the rules loaded.
    let placed = prom
        .query(r#"sum(emporium_events_published_total{type="ordering.order_placed"})"#)
        .await;
    assert_eq!(placed[0]["value"][1], "2", "{placed:?}");
    let confirmed = prom
        .query("sum(emporium_checkout_to_confirmed_seconds_count)")
        .await;
    assert_eq!(confirmed[0]["value"][1], "2", "{confirmed:?}");
    assert_eq!(prom.query("emporium_ready == 1").await.len(), 1);
    assert!(prom.query("emporium_dependency_up == 0").await.is_empty());
    let rules: Value = reqwest::get(format!("{}/api/v1/rules", prom.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let loaded: usize = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["rules"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(loaded, 13, "{rules}");
    app.stop().await;
}
