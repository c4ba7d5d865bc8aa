//! The real binary's start-up decisions: fail fast with a message naming the problem.

use std::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_ui-connector");

fn run(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let output = Command::new(BINARY)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn local_mode_refuses_to_run_on_cloud_run() {
    let (ok, text) = run(
        &["--local"],
        &[("K_SERVICE", "ui-connector"), ("PORT", "0")],
    );
    assert!(!ok);
    assert!(text.contains("K_SERVICE"), "{text}");
}

#[test]
fn a_missing_project_or_secret_stops_the_service() {
    let (ok, text) = run(&[], &[("PORT", "0")]);
    assert!(!ok);
    assert!(text.contains("GCP_PROJECT_ID"), "{text}");

    let dir = std::env::temp_dir().join(format!("connector-binary-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty_secret");
    std::fs::write(&empty, "  \n").unwrap();
    let (ok, text) = run(
        &[],
        &[
            ("PORT", "0"),
            ("GCP_PROJECT_ID", "p"),
            ("JWT_SECRET_KEY_PATH", empty.to_str().unwrap()),
        ],
    );
    assert!(!ok);
    assert!(text.contains("empty"), "{text}");
    let (ok, text) = run(
        &[],
        &[
            ("PORT", "0"),
            ("GCP_PROJECT_ID", "p"),
            ("JWT_SECRET_KEY_PATH", dir.join("missing").to_str().unwrap()),
        ],
    );
    assert!(!ok);
    assert!(text.contains("JWT_SECRET_KEY_PATH"), "{text}");
    let (ok, text) = run(
        &[],
        &[
            ("PORT", "0"),
            ("GCP_PROJECT_ID", "p"),
            ("AUTH_OPTION", "Okta"),
        ],
    );
    assert!(!ok);
    assert!(text.contains("AUTH_OPTION"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}
