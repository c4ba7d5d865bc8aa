//! Checks of the deployment files, which are not Rust and so would otherwise go untested.
//!
//! The Dockerfiles, `deploy/deploy.sh`, `deploy/teardown.sh` and `deploy/terraform` only ever
//! run against Google Cloud, which CI cannot reach. The integration tests under `tests/` check
//! them here instead: they run the scripts against a fake `gcloud` that records every command,
//! run `shellcheck` on them, read the Dockerfiles, and compare the Terraform configuration
//! (evaluated without its providers) with what the fake `gcloud` recorded. This library is
//! intentionally empty; the crate exists so that `cargo test` runs those checks with the rest
//! of the workspace.
