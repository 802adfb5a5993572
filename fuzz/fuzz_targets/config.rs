//! The native TOML configuration: `config::parse` on arbitrary text, then
//! the key files resolved from memory (no file system), as `load` does.
//!
//! What must hold: parsing is a function of the text (the same text gives
//! the same result twice), every refusal has at least one message and its
//! messages render; a config that parses resolves its keys or says why.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sentrymesh::config::{ConfigError, parse};
use sentrymesh_tunnel::PresharedKey;
use sentrymesh_types::PrivateKey;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/etc/sentrymesh/fuzz.toml");
    let first = parse(text, path);
    let second = parse(text, path);
    assert_eq!(
        format!("{first:?}"),
        format!("{second:?}"),
        "parsing is not a function"
    );
    match first {
        Ok(parsed) => {
            let resolved = parsed.resolve_keys(
                |_| Ok(PrivateKey::from_bytes([0x42; 32])),
                |_| Ok(PresharedKey::from_bytes([0x24; 32])),
            );
            if let Err(error) = resolved {
                assert!(!error.to_string().is_empty());
            }
        }
        Err(ConfigError::Invalid(diagnostics)) => {
            assert!(!diagnostics.is_empty(), "refused without a reason");
            let error = ConfigError::Invalid(diagnostics);
            assert!(!error.to_string().is_empty());
        }
        Err(error) => panic!("parse read something: {error}"),
    }
});
