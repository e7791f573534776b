//! The configuration boundary's error type. Every variant names the key and, where there is
//! one, the value that was wrong; none is retryable, and `main` maps them all to exit 64.

use std::path::PathBuf;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("cannot read config file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    /// The file is not valid TOML, has an unknown key, or a value of the wrong type.
    #[error("invalid config: {0}")]
    Parse(String),
    /// A value parsed but is not acceptable.
    #[error("invalid config: {key} = {value}: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
    /// A required key is absent.
    #[error("invalid config: {key} is required: {reason}")]
    Missing { key: String, reason: String },
    /// A secret file or credential could not be read (the secret itself is never shown).
    #[error("invalid config: {key}: cannot read secret from {path}: {reason}")]
    Secret {
        key: String,
        path: PathBuf,
        reason: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(
        key: impl Into<String>,
        value: impl ToString,
        reason: impl Into<String>,
    ) -> Self {
        Self::Invalid {
            key: key.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}
