//! Issue 16: the container image's default config starts as the image lays it out — the
//! config where the Dockerfile copies it, state under `/var/lib/tollgate` owned by the image's
//! non-root user (uid 10001, through `setpriv` when the test runs as root) — listens, and
//! `tollgate healthcheck` (the image's HEALTHCHECK) says it is ready.

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const IMAGE_UID: u32 = 10001;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn healthy(exe: &Path, cfg: &Path) -> bool {
    Command::new(exe)
        .args(["healthcheck", "--config"])
        .arg(cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn the_image_default_config_starts_as_a_non_root_user_and_reports_ready() {
    let root = tempfile::tempdir().unwrap();
    let var_lib = root.path().join("var/lib/tollgate");
    let etc = root.path().join("etc/tollgate");
    std::fs::create_dir_all(&var_lib).unwrap();
    std::fs::create_dir_all(&etc).unwrap();
    let (public, admin) = (free_port(), free_port());
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/docker/config.yaml"
    ))
    .unwrap();
    assert!(shipped.contains("0.0.0.0:8080") && shipped.contains("/var/lib/tollgate"));
    // Only the host paths and the ports move; everything else is the image's file.
    let cfg_text = shipped
        .replace("/var/lib/tollgate", &var_lib.display().to_string())
        .replace("0.0.0.0:8080", &format!("127.0.0.1:{public}"))
        .replace("127.0.0.1:9090", &format!("127.0.0.1:{admin}"));
    let cfg = etc.join("tollgate.yaml");
    std::fs::write(&cfg, cfg_text).unwrap();

    let exe = Path::new(support::bin::exe()).to_path_buf();
    let setpriv = Path::new("/usr/bin/setpriv");
    let as_image_user = is_root() && setpriv.exists();
    let mut cmd = if as_image_user {
        // As the image: the tree readable by all, the state directory the user's own.
        for d in [
            root.path(),
            &root.path().join("var"),
            &root.path().join("var/lib"),
        ] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        for d in [root.path().join("etc"), etc.clone()] {
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::chown(&var_lib, Some(IMAGE_UID), Some(IMAGE_UID)).unwrap();
        let ids = [
            "--reuid".to_string(),
            IMAGE_UID.to_string(),
            "--regid".to_string(),
            IMAGE_UID.to_string(),
            "--clear-groups".to_string(),
        ];
        // A checkout under a private directory keeps the binary from that user: use a copy.
        let reachable = Command::new(setpriv)
            .args(&ids)
            .arg(&exe)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let exe = if reachable {
            exe.clone()
        } else {
            let copy = root.path().join("tollgate");
            std::fs::copy(&exe, &copy).unwrap();
            std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
            copy
        };
        let mut c = Command::new(setpriv);
        c.args(&ids).arg(exe);
        c
    } else {
        Command::new(&exe)
    };
    let mut child = cmd
        .args(["run", "--config"])
        .arg(&cfg)
        .current_dir(&var_lib)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(15);
    let mut ready = false;
    while Instant::now() < deadline {
        if healthy(&exe, &cfg) {
            ready = true;
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            use std::io::Read as _;
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("the gateway exited ({status}): {err}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let listens = std::net::TcpStream::connect(("127.0.0.1", public)).is_ok();
    let key = var_lib.join("master.key");
    let key_owner = std::fs::metadata(&key).map(|m| std::os::unix::fs::MetadataExt::uid(&m));
    let _ = child.kill();
    let _ = child.wait();
    assert!(ready, "healthcheck never passed");
    assert!(listens, "the public listener accepts connections");
    assert!(key.exists(), "state under /var/lib/tollgate");
    if as_image_user {
        assert_eq!(key_owner.unwrap(), IMAGE_UID, "written by the image's user");
    }
    // With the gateway gone the healthcheck fails.
    assert!(!healthy(&exe, &cfg));
}
