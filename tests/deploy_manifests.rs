//! Issue 15: the Kubernetes sidecar example and the systemd unit agree with the gateway. The
//! ConfigMap's config loads and, started, answers the probes the Deployment points at; the
//! probe and container ports are the config's listeners; the Service exposes the public port
//! only; the pod runs as non-root on read-only root filesystems with its state on a volume;
//! every Secret key referenced exists. The unit runs `tollgate run` hardened.

mod support;

use serde_yaml_ng::Value;
use std::collections::BTreeMap;
use support::TestClient;

fn docs() -> BTreeMap<String, Value> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/kubernetes/sidecar.yaml"
    ))
    .unwrap();
    let mut out = BTreeMap::new();
    for d in serde_yaml_ng::Deserializer::from_str(&text) {
        let v = Value::deserialize(d).unwrap();
        let kind = v["kind"].as_str().unwrap().to_owned();
        out.insert(kind, v);
    }
    out
}

use serde::Deserialize as _;

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v:?}"))
}

fn port_of(addr: &str) -> u64 {
    addr.rsplit(':')
        .next()
        .unwrap()
        .trim_matches('"')
        .parse()
        .unwrap()
}

#[tokio::test]
async fn the_sidecar_example_matches_the_gateway_it_configures() {
    let d = docs();
    for k in ["ConfigMap", "Secret", "Deployment", "Service"] {
        assert!(d.contains_key(k), "no {k} in the example");
    }
    let config = s(&d["ConfigMap"]["data"]["tollgate.yaml"]).to_owned();
    let parsed: Value = serde_yaml_ng::from_str(&config).unwrap();
    let public = port_of(s(&parsed["listen"]["address"]));
    let admin = port_of(s(&parsed["admin"]["address"]));
    let token_file = s(&parsed["admin"]["token_file"]).to_owned();
    let store = s(&parsed["store"]["path"]).to_owned();

    let pod = &d["Deployment"]["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], Value::Bool(true));
    let containers = pod["containers"].as_sequence().unwrap();
    assert!(
        containers.len() >= 2,
        "a sidecar sits beside an app container"
    );
    let tg = containers
        .iter()
        .find(|c| c["name"].as_str() == Some("tollgate"))
        .unwrap();
    for c in containers {
        assert_eq!(
            c["securityContext"]["readOnlyRootFilesystem"],
            Value::Bool(true)
        );
        assert_eq!(
            c["securityContext"]["allowPrivilegeEscalation"],
            Value::Bool(false)
        );
    }
    let ports: BTreeMap<&str, u64> = tg["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| (s(&p["name"]), p["containerPort"].as_u64().unwrap()))
        .collect();
    assert_eq!(ports["http"], public);
    assert_eq!(ports["admin"], admin);
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        assert_eq!(s(&tg[probe]["httpGet"]["path"]), path);
        assert_eq!(s(&tg[probe]["httpGet"]["port"]), "admin");
    }
    // The Service reaches the public port only.
    for p in d["Service"]["spec"]["ports"].as_sequence().unwrap() {
        let target = &p["targetPort"];
        assert!(
            target == &Value::from("http") || target.as_u64() == Some(public),
            "the Service exposes {target:?}"
        );
    }
    // Mounts: the config where --config reads it, the state where store.path lives, the
    // admin token where token_file points, each Secret key that is referenced present.
    let args: Vec<&str> = tg["args"].as_sequence().unwrap().iter().map(s).collect();
    let config_path = args[args.iter().position(|a| *a == "--config").unwrap() + 1];
    let mounts: Vec<(&str, &str)> = tg["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|m| (s(&m["name"]), s(&m["mountPath"])))
        .collect();
    let mount = |name: &str| mounts.iter().find(|m| m.0 == name).unwrap().1;
    assert_eq!(mount("config"), config_path);
    assert!(
        store.starts_with(mount("state")),
        "{store} is not on the state volume"
    );
    assert!(token_file.starts_with(mount("secrets")));
    let secret_keys: Vec<&str> = d["Secret"]["stringData"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(s)
        .collect();
    let env = tg["env"].as_sequence().unwrap();
    for e in env {
        let key = s(&e["valueFrom"]["secretKeyRef"]["key"]);
        assert!(
            secret_keys.contains(&key),
            "env {:?} names a missing key {key}",
            e["name"]
        );
    }
    let vols = pod["volumes"].as_sequence().unwrap();
    for v in vols {
        for item in v["secret"]["items"].as_sequence().into_iter().flatten() {
            assert!(secret_keys.contains(&s(&item["key"])));
        }
    }

    // The config itself, with its files in a temp dir and its listeners on free ports,
    // loads and answers the probes.
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("admin-token");
    std::fs::write(&token, "t0ken").unwrap();
    let local = config
        .replace(&token_file, &token.display().to_string())
        .replace(
            &store,
            &dir.path().join("tollgate.db").display().to_string(),
        )
        .replace(&format!("0.0.0.0:{public}"), "127.0.0.1:0")
        .replace(&format!("0.0.0.0:{admin}"), "127.0.0.1:0");
    let file = dir.path().join("tollgate.yaml");
    std::fs::write(&file, &local).unwrap();
    let cfg = tollgate::config::load(&file).unwrap_or_else(|e| panic!("{e}"));
    let running = tollgate::server::start(cfg).await.unwrap();
    let admin_addr = running.admin_addr.unwrap();
    for path in ["/healthz", "/readyz"] {
        let r = TestClient::plain()
            .send("GET", &format!("http://{admin_addr}{path}"), &[], "")
            .await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }
    running.shutdown().await;
}

#[test]
fn the_systemd_unit_runs_the_gateway_hardened() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/systemd/tollgate.service"
    ))
    .unwrap();
    let keys: Vec<(&str, &str)> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .collect();
    let get = |k: &str| keys.iter().find(|(x, _)| *x == k).map(|(_, v)| *v);
    assert!(get("ExecStart")
        .unwrap()
        .contains(" run --config /etc/tollgate/tollgate.yaml"));
    assert!(get("ExecStartPre")
        .unwrap()
        .contains(" check --config /etc/tollgate/tollgate.yaml"));
    assert!(
        get("ExecReload").unwrap().contains("-HUP"),
        "reload is SIGHUP"
    );
    assert_eq!(get("KillSignal"), Some("SIGTERM"), "stop is a drain");
    assert_eq!(get("StateDirectory"), Some("tollgate"));
    for (k, v) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictNamespaces", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("DynamicUser", "yes"),
    ] {
        assert_eq!(get(k), Some(v), "{k}");
    }
}
