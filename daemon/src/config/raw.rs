//! The config file as written: every value with its span, checked by serde
//! only for its shape (known keys, TOML types). The checks of the values
//! themselves are in `validate`, where each can point at its value.

use serde::Deserialize;
use toml::Spanned;

/// A list of strings, the list and each string with its span.
pub(super) type Strings = Spanned<Vec<Spanned<String>>>;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) interface: Spanned<RawInterface>,
    #[serde(default, rename = "peer")]
    pub(super) peers: Vec<Spanned<RawPeer>>,
    pub(super) ready: Option<RawReady>,
    pub(super) metrics: Option<RawMetrics>,
    pub(super) mesh: Option<Spanned<RawMesh>>,
    pub(super) trust: Option<Spanned<RawTrust>>,
    /// `[firewall]`.
    pub(super) firewall: Option<Spanned<RawFirewall>>,
    /// `[operators]`: `OPERATOR_ID = "alias"`, for `sentrymesh status`.
    pub(super) operators: Option<Spanned<std::collections::BTreeMap<String, Spanned<String>>>>,
}

/// `[mesh]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMesh {
    pub(super) card_file: Spanned<String>,
    pub(super) known_dir: Option<Spanned<String>>,
    pub(super) state_dir: Spanned<String>,
    pub(super) gossip_port: Option<Spanned<i64>>,
    pub(super) introduction_port: Option<Spanned<i64>>,
}

/// `[trust]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTrust {
    /// Optional in the file's shape so that its absence gets a message
    /// saying what to add, not serde's "missing field".
    pub(super) overlay: Option<Spanned<String>>,
    pub(super) own_overlay: Option<Spanned<String>>,
    /// Each `{ id = "…", overlay = "…" }`; read as any value, so that the
    /// bare ids of older configs get a message saying what to write.
    pub(super) operators: Spanned<Vec<Spanned<toml::Value>>>,
    pub(super) vouch_threshold: Spanned<i64>,
}

/// `[firewall]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFirewall {
    pub(super) open_to_own: Option<Spanned<bool>>,
    pub(super) conntrack_max: Option<Spanned<i64>>,
    #[serde(default)]
    pub(super) inbound: Vec<Spanned<RawRule>>,
    pub(super) outbound: Option<Vec<Spanned<RawRule>>>,
}

/// One `[[firewall.inbound]]` or `[[firewall.outbound]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    pub(super) from: Spanned<String>,
    pub(super) roles: Option<Strings>,
    pub(super) proto: Option<Spanned<String>>,
    /// A string (`"26656"`, `"26656-26660"`) or a bare port number.
    pub(super) ports: Option<Spanned<toml::Value>>,
}

/// `[metrics]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    pub(super) listen: Spanned<String>,
    pub(super) allow_public: Option<Spanned<bool>>,
}

/// `[ready]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReady {
    pub(super) min_trusted_peers: Option<Spanned<i64>>,
}

/// `[interface]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInterface {
    pub(super) name: Spanned<String>,
    pub(super) private_key_file: Spanned<String>,
    pub(super) listen_port: Option<Spanned<i64>>,
    pub(super) addresses: Strings,
    pub(super) mtu: Option<Spanned<i64>>,
    pub(super) fwmark: Option<Spanned<i64>>,
}

/// One `[[peer]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPeer {
    pub(super) public_key: Spanned<String>,
    pub(super) endpoint: Option<Spanned<String>>,
    pub(super) allowed_ips: Strings,
    pub(super) preshared_key_file: Option<Spanned<String>>,
    pub(super) persistent_keepalive: Option<Spanned<i64>>,
}
