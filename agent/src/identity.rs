//! The agent's identity: a random UUID created on first start and kept in the state
//! directory (`agent-id`), so that the collector knows one agent across restarts,
//! upgrades and address changes. It is half of every idempotency key.

use std::path::Path;

/// Reads `<state_dir>/agent-id`, or creates it (written to a temporary file, fsynced and
/// renamed, so a crash never leaves a half-written identity).
pub fn load_or_create(state_dir: &Path) -> std::io::Result<String> {
    let path = state_dir.join("agent-id");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim();
            if uuid::Uuid::parse_str(id).is_ok() {
                return Ok(id.to_owned());
            }
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} does not hold a UUID: {id:?}", path.display()),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::create_dir_all(state_dir)?;
    let id = uuid::Uuid::new_v4().to_string();
    crate::fsio::write_atomic(&path, format!("{id}\n").as_bytes(), 0o644)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = load_or_create(dir.path()).expect("create");
        let b = load_or_create(dir.path()).expect("read");
        assert_eq!(a, b);
        std::fs::write(dir.path().join("agent-id"), "garbage").expect("write");
        let err = load_or_create(dir.path()).expect_err("not a uuid");
        assert!(err.to_string().contains("garbage"), "{err}");
    }
}
