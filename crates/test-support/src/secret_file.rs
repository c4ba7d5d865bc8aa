//! A JWT secret in a file of its own, as Secret Manager mounts it, removed on drop.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct SecretFile {
    dir: PathBuf,
    path: PathBuf,
}

impl SecretFile {
    /// A new file holding `contents` (a trailing newline, as `echo` writes it, is fine).
    pub fn new(contents: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "agent-assist-secret-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the secret's directory");
        let path = dir.join("jwt_secret_key");
        std::fs::write(&path, contents).expect("write the secret");
        Self { dir, path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SecretFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
