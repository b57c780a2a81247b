//! What a plugin file is and what it says of itself: the header check
//! (a component, not a text file or a core module) and the validation of
//! `describe`'s answer ([`PluginInfo`]): a well-formed name, a compatible
//! API version, capabilities without control characters.

use super::bindings::{wit, ApiVersion};
use super::grants::Capability;
use super::output::{self, clean_line};
use crate::event::{Event, EventSet};
use anyhow::{bail, Result};
use std::path::Path;

/// What a plugin said of itself in `describe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub api_version: String,
    pub events: EventSet,
    pub stateful: bool,
    pub capabilities: Vec<Capability>,
}

/// Rejects a file that is not a component, with the reason.
pub(super) fn check_header(path: &Path, bytes: &[u8]) -> Result<()> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        bail!("{}: not a WebAssembly file (no `\\0asm` header); expected a component built for wasm32-wasip2", path.display());
    }
    if bytes[4..8] == [1, 0, 0, 0] {
        bail!(
            "{}: is a core WebAssembly module, not a component; build it for wasm32-wasip2 or wrap it with `wasm-tools component new`",
            path.display()
        );
    }
    Ok(())
}

/// Whether `name` is a plugin name: 1-64 lowercase letters, digits, `-`, `_`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Most events, and most capabilities, a plugin may list in `describe`.
const MAX_LISTED: usize = 256;

/// Checks and converts `describe`'s answer, from a plugin whose export is
/// of version `api`.
pub(super) fn plugin_info(
    path: &Path,
    api: ApiVersion,
    raw: wit::PluginInfo,
) -> Result<PluginInfo> {
    if !valid_name(&raw.name) {
        bail!(
            "{}: plugin name {} is invalid: use 1-64 lowercase letters, digits, '-' or '_'",
            path.display(),
            clean_line(&format!("{:?}", raw.name))
        );
    }
    // The version it says it was built for must be the one it exports.
    if ApiVersion::serving(&raw.api_version) != Some(api) {
        bail!(
            "{}: exports trainbox:callback/plugin@{} but describe says api-version {}; the two must agree: rebuild the plugin with one trainbox-sdk",
            path.display(),
            api.as_str(),
            clean_line(&format!("{:?}", raw.api_version))
        );
    }
    if raw.events.len() > MAX_LISTED || raw.capabilities.len() > MAX_LISTED {
        bail!(
            "{}: describe lists {} events and {} capabilities; at most {MAX_LISTED} of each",
            path.display(),
            raw.events.len(),
            raw.capabilities.len()
        );
    }
    let capabilities: Vec<Capability> = raw
        .capabilities
        .into_iter()
        .map(|c| match c {
            wit::Capability::ReadDir(p) => Capability::ReadDir(p),
            wit::Capability::WriteDir(p) => Capability::WriteDir(p),
            wit::Capability::Http(o) => Capability::Http(o),
            wit::Capability::Env(v) => Capability::Env(v),
        })
        .collect();
    for c in &capabilities {
        let text = c.text();
        if clean_line(text) != *text {
            bail!(
                "{}: asks for a capability with control characters or over {} bytes: {}",
                path.display(),
                output::MAX_LINE,
                clean_line(&format!("{text:?}"))
            );
        }
    }
    Ok(PluginInfo {
        name: raw.name,
        version: clean_line(&raw.version),
        api_version: raw.api_version,
        events: raw.events.into_iter().map(Event::from).collect(),
        stateful: raw.stateful,
        capabilities,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_lowercase_words() {
        for ok in ["recorder", "early-stopping", "a_b", "x1"] {
            assert!(valid_name(ok), "{ok}");
        }
        let long = "a".repeat(65);
        for bad in ["", "Recorder", "a b", "../x", "é", long.as_str()] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn describe_lists_are_bounded() {
        let info = |events: usize, capabilities: usize| wit::PluginInfo {
            name: "p".into(),
            version: "1".into(),
            api_version: ApiVersion::LATEST.as_str().into(),
            events: vec![wit::Event::Log; events],
            stateful: false,
            capabilities: vec![wit::Capability::Env("X".into()); capabilities],
        };
        let p = Path::new("p.wasm");
        let latest = ApiVersion::LATEST;
        assert!(plugin_info(p, latest, info(MAX_LISTED, MAX_LISTED)).is_ok());
        for (e, c) in [(MAX_LISTED + 1, 0), (0, 1_000_000)] {
            let err = plugin_info(p, latest, info(e, c)).unwrap_err().to_string();
            assert!(
                err.starts_with("p.wasm: describe lists") && err.contains("at most 256"),
                "{err}"
            );
        }
    }

    #[test]
    fn describe_must_agree_with_the_export() {
        let p = Path::new("p.wasm");
        let info = |api: &str| wit::PluginInfo {
            name: "p".into(),
            version: "1".into(),
            api_version: api.into(),
            events: vec![],
            stateful: false,
            capabilities: vec![],
        };
        assert!(plugin_info(p, ApiVersion::V0_1_0, info("0.1.0")).is_ok());
        assert!(plugin_info(p, ApiVersion::V0_2_0, info("0.2.0")).is_ok());
        for (api, said) in [(ApiVersion::V0_2_0, "0.1.0"), (ApiVersion::V0_1_0, "0.2.0")] {
            let err = plugin_info(p, api, info(said)).unwrap_err().to_string();
            assert!(
                err.contains(&format!(
                    "exports trainbox:callback/plugin@{}",
                    api.as_str()
                )) && err.contains(&format!("describe says api-version \"{said}\"")),
                "{err}"
            );
        }
    }

    #[test]
    fn headers_name_what_the_file_is() {
        let p = Path::new("x.wasm");
        let err = check_header(p, b"hello world").unwrap_err().to_string();
        assert!(err.contains("not a WebAssembly file"), "{err}");
        let err = check_header(p, b"\0asm\x01\0\0\0").unwrap_err().to_string();
        assert!(err.contains("core WebAssembly module"), "{err}");
        assert!(check_header(p, b"\0asm\x0d\0\x01\0").is_ok());
    }
}
