//! Agent configuration: the raw TOML/environment shape (`raw`), and the validated, typed
//! configuration (`AgentConfig`) that the rest of the agent uses.
//!
//! Configuration is read in two stages, as ripgrep does: `raw` mirrors the file closely and
//! rejects unknown keys; `validate` turns it into typed values (durations, parsed URLs,
//! thumbprints, secrets read from files) once, at start-up, so nothing later re-checks it.

pub mod counters;
mod error;
mod raw;
mod secret;
mod ship;
mod validate;

pub use crate::tls::TlsPolicy;
pub use error::ConfigError;
pub use raw::{RawAgent, RawBuffer, RawCollector, RawConfig, RawPerf, RawTls, RawVcenter};
pub use secret::Secret;
pub use ship::{BufferConfig, CollectorConfig, Compression};
pub use validate::{parse_thumbprint, AgentConfig, PerfConfig, VcenterConfig};

use std::path::Path;

/// Where the agent looks for its configuration when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/vscout/agent.toml";

/// Prefix of environment variables that override `[agent]` keys: `VSCOUT_AGENT__STATE_DIR=/x`
/// sets `agent.state_dir`. A double underscore separates nesting levels because key names
/// themselves contain single underscores.
pub const ENV_PREFIX: &str = "VSCOUT";

/// Loads the file at `path`, applies overrides from `env` (name, value pairs; the caller
/// passes `std::env::vars()` in production and a fixed list in tests), and validates.
pub fn load(
    path: &Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<AgentConfig, ConfigError> {
    let raw = raw::read(path, env)?;
    validate::validate(raw, &validate::Context::from_process())
}

/// Parses configuration text (TOML) with no environment overrides; for tests and `check`.
pub fn from_toml_str(text: &str) -> Result<AgentConfig, ConfigError> {
    let raw = raw::parse_str(text)?;
    validate::validate(raw, &validate::Context::from_process())
}

/// Parses configuration text into the raw structs only (no validation, no secrets read):
/// for tools that write configuration and check what they wrote.
pub fn parse_raw(text: &str) -> Result<RawConfig, ConfigError> {
    raw::parse_str(text)
}
