//! Checks `[mesh]` and `[trust]`: a mesh member needs both, and takes its
//! peers from cards, not from `[[peer]]` sections. `[trust]` gives the
//! mesh's overlay and each directly trusted operator's range in it; a config
//! without them is refused with what to add, rather than defaulted, since
//! a default range would let every card route anything.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use sentrymesh_mesh::OperatorId;
use sentrymesh_types::{InterfaceAddress, IpNet, IpNetError};
use toml::Spanned;

use super::Checker;
use crate::config::MeshSettings;
use crate::config::raw::{RawConfig, RawMesh, RawTrust};
use crate::dataplane::firewall::Rules;

/// The UDP port gossip uses on the overlay when the config names none.
pub(in crate::config) const DEFAULT_GOSSIP_PORT: u16 = 51900;
/// The most operators `[trust] operators` may name.
const MAX_TRUSTED_OPERATORS: usize = 256;

impl Checker<'_> {
    /// `Some(None)` for a config without a mesh, `Some(Some(_))` for a valid
    /// mesh, `None` when a problem was reported.
    pub(super) fn mesh(&mut self, raw: &RawConfig) -> Option<Option<MeshSettings>> {
        match (&raw.mesh, &raw.trust) {
            (None, None) => {
                if let Some(firewall) = &raw.firewall {
                    let message = "[firewall] sorts a mesh member's peers by operator and \
                                   role, which [[peer]] sections do not have: add [mesh] and \
                                   [trust], or remove it"
                        .to_owned();
                    self.report(firewall.span(), "firewall", message);
                    return None;
                }
                if let Some(operators) = &raw.operators {
                    let message = "[operators] names the operators of a mesh: add [mesh] and \
                                   [trust], or remove it"
                        .to_owned();
                    self.report(operators.span(), "operators", message);
                    return None;
                }
                Some(None)
            }
            (Some(mesh), None) => {
                let message = "a mesh member needs a [trust] section naming the operators it \
                               trusts"
                    .to_owned();
                self.report(mesh.span(), "mesh", message);
                None
            }
            (None, Some(trust)) => {
                let message = "[trust] applies to a mesh member: add a [mesh] section".to_owned();
                self.report(trust.span(), "trust", message);
                None
            }
            (Some(mesh), Some(trust)) => {
                for (i, peer) in raw.peers.iter().enumerate() {
                    let message = "a mesh member takes its peers from cards: remove the \
                                   [[peer]] sections, or the [mesh] section"
                        .to_owned();
                    self.report(peer.span(), &format!("peer[{i}]"), message);
                }
                let aliases = self.operator_aliases(raw.operators.as_ref());
                let firewall = self.firewall(raw.firewall.as_ref());
                let settings = self
                    .mesh_settings(mesh.get_ref(), trust)
                    .zip(aliases)
                    .zip(firewall)
                    .map(|((settings, aliases), firewall)| MeshSettings {
                        aliases,
                        firewall,
                        ..settings
                    });
                if let Some(settings) = &settings {
                    self.addresses_in_overlay(raw, settings.overlay);
                }
                (raw.peers.is_empty() && settings.is_some()).then_some(settings)
            }
        }
    }

    fn mesh_settings(&mut self, mesh: &RawMesh, trust: &Spanned<RawTrust>) -> Option<MeshSettings> {
        let (span, trust) = (trust.span(), trust.get_ref());
        let card_file = self.path(&mesh.card_file, "mesh.card_file");
        let known_dir = match &mesh.known_dir {
            None => Some(None),
            Some(dir) => self.path(dir, "mesh.known_dir").map(Some),
        };
        let state_dir = self.path(&mesh.state_dir, "mesh.state_dir");
        let gossip_port = self.port(
            mesh.gossip_port.as_ref(),
            "mesh.gossip_port",
            DEFAULT_GOSSIP_PORT,
        );
        let introduction_port = self.port(
            mesh.introduction_port.as_ref(),
            "mesh.introduction_port",
            DEFAULT_GOSSIP_PORT + 1,
        );
        if let (Some(gossip), Some(introduction), Some(at)) =
            (gossip_port, introduction_port, &mesh.introduction_port)
        {
            if gossip == introduction {
                let message = format!("{introduction} is the gossip port too; take another");
                self.report(at.span(), "mesh.introduction_port", message);
            }
        }
        let overlay = self.overlay(trust, span.clone());
        let own_overlay = self.own_overlay(trust, span, overlay);
        let operators = self.trusted_operators(trust, overlay, own_overlay);
        let vouch_threshold = self
            .integer(
                &trust.vouch_threshold,
                "trust.vouch_threshold",
                1..=64,
                "a number of vouches",
            )
            .and_then(|value| usize::try_from(value).ok());
        Some(MeshSettings {
            card_file: card_file?,
            known_dir: known_dir?,
            state_dir: state_dir?,
            gossip_port: gossip_port?,
            introduction_port: introduction_port?,
            overlay: overlay?,
            own_overlay: own_overlay?,
            trusted_operators: operators?,
            vouch_threshold: vouch_threshold?,
            aliases: BTreeMap::new(),
            firewall: Rules::default(),
        })
    }

    /// A path, resolved against the config's directory.
    fn path(&mut self, text: &Spanned<String>, key: &str) -> Option<PathBuf> {
        if text.get_ref().is_empty() {
            self.report(text.span(), key, "an empty path names nothing".to_owned());
            return None;
        }
        let directory = self.source.file.parent().unwrap_or(Path::new(""));
        Some(directory.join(text.get_ref()))
    }

    fn port(&mut self, value: Option<&Spanned<i64>>, key: &str, default: u16) -> Option<u16> {
        match value {
            None => Some(default),
            Some(port) => self
                .integer(port, key, 1..=65535, "a UDP port")
                .and_then(|port| u16::try_from(port).ok()),
        }
    }

    /// `[trust] overlay`: a network.
    fn overlay(&mut self, trust: &RawTrust, section: Range<usize>) -> Option<IpNet> {
        let Some(text) = &trust.overlay else {
            let message = "has no overlay: add overlay = \"ADDRESS/PREFIX\" (e.g. \
                           \"198.19.0.0/16\"), the mesh's overlay range, which every \
                           operator's range lies in; nothing outside it is routed into the \
                           interface"
                .to_owned();
            self.report(section, "trust", message);
            return None;
        };
        self.network(text, "trust.overlay")
    }

    /// `[trust] own_overlay`: a network inside the overlay.
    fn own_overlay(
        &mut self,
        trust: &RawTrust,
        section: Range<usize>,
        overlay: Option<IpNet>,
    ) -> Option<IpNet> {
        let Some(text) = &trust.own_overlay else {
            let message = "has no own_overlay: add own_overlay = \"ADDRESS/PREFIX\" (e.g. \
                           \"198.19.1.0/24\"), this host's operator's range inside the \
                           overlay, which its cards' addresses and allowed IPs must keep to"
                .to_owned();
            self.report(section, "trust", message);
            return None;
        };
        let range = self.network(text, "trust.own_overlay")?;
        self.inside(overlay?, range, text.span(), "trust.own_overlay")
            .then_some(range)
    }

    /// A network (no host bits) in CIDR notation.
    fn network(&mut self, text: &Spanned<String>, key: &str) -> Option<IpNet> {
        let checked = match text.get_ref().parse::<IpNet>() {
            // The error names the address and its network.
            Err(error @ IpNetError::HostBits { .. }) => Err(error.to_string()),
            Err(error) => Err(format!(
                "{:?} is not a network (ADDRESS/PREFIX, e.g. 198.19.0.0/16): {error}",
                text.get_ref()
            )),
            Ok(range) => Ok(range),
        };
        checked
            .map_err(|message| self.report(text.span(), key, message))
            .ok()
    }

    /// Whether `range` lies inside `overlay`; reports it at `span` if not.
    fn inside(&mut self, overlay: IpNet, range: IpNet, span: Range<usize>, key: &str) -> bool {
        if overlay.contains_net(&range) {
            return true;
        }
        let message = format!("{range} is not inside the overlay {overlay}");
        self.report(span, key, message);
        false
    }

    /// `[trust] operators`: each `{ id, overlay }`, the ids distinct, the
    /// ranges inside the overlay and overlapping neither each other nor
    /// `own_overlay`.
    fn trusted_operators(
        &mut self,
        trust: &RawTrust,
        overlay: Option<IpNet>,
        own_overlay: Option<IpNet>,
    ) -> Option<BTreeMap<OperatorId, IpNet>> {
        let list = trust.operators.get_ref();
        if list.len() > MAX_TRUSTED_OPERATORS {
            let message = format!(
                "names {} operators; at most {MAX_TRUSTED_OPERATORS}",
                list.len()
            );
            self.report(trust.operators.span(), "trust.operators", message);
            return None;
        }
        let mut operators = BTreeMap::new();
        // Each range so far, with where it is named.
        let mut ranges: Vec<(IpNet, String)> = own_overlay
            .map(|range| (range, "own_overlay".to_owned()))
            .into_iter()
            .collect();
        let mut valid = true;
        for (i, item) in list.iter().enumerate() {
            let key = format!("trust.operators[{i}]");
            let checked = trusted_operator(item.get_ref()).and_then(|(id, range)| {
                if operators.contains_key(&id) {
                    return Err(format!("{id} is listed twice"));
                }
                if let Some(overlay) = overlay.filter(|overlay| !overlay.contains_net(&range)) {
                    return Err(format!("{range} is not inside the overlay {overlay}"));
                }
                if let Some((_, other)) = ranges.iter().find(|(held, _)| held.overlaps(&range)) {
                    return Err(format!("{range} overlaps the range of {other}"));
                }
                Ok((id, range))
            });
            match checked {
                Ok((id, range)) => {
                    operators.insert(id, range);
                    ranges.push((range, key));
                }
                Err(message) => {
                    self.report(item.span(), &key, message);
                    valid = false;
                }
            }
        }
        valid.then_some(operators)
    }

    /// Refuses a mesh member's interface address whose subnet leaves the
    /// overlay: the kernel would route that subnet into the interface.
    fn addresses_in_overlay(&mut self, raw: &RawConfig, overlay: IpNet) {
        for (i, text) in raw
            .interface
            .get_ref()
            .addresses
            .get_ref()
            .iter()
            .enumerate()
        {
            // Malformed addresses are reported by the interface's checks.
            let Ok(address) = text.get_ref().parse::<InterfaceAddress>() else {
                continue;
            };
            if !overlay.contains_net(&address.network()) {
                let message = format!(
                    "{} is not inside [trust] overlay {overlay}: a mesh member routes nothing \
                     outside the overlay into the interface",
                    address.network()
                );
                self.report(text.span(), &format!("interface.addresses[{i}]"), message);
            }
        }
    }
}

/// One `{ id = "…", overlay = "…" }` of `[trust] operators`.
fn trusted_operator(item: &toml::Value) -> Result<(OperatorId, IpNet), String> {
    let table = match item {
        toml::Value::Table(table) => table,
        toml::Value::String(id) => {
            return Err(format!(
                "each trusted operator now comes with its overlay range: write \
                 {{ id = {id:?}, overlay = \"ADDRESS/PREFIX\" }} (e.g. \"198.19.2.0/24\", the \
                 only addresses its cards may route)"
            ));
        }
        other => {
            return Err(format!(
                "{other} is not {{ id = \"OPERATOR ID\", overlay = \"ADDRESS/PREFIX\" }}"
            ));
        }
    };
    if let Some(key) = table.keys().find(|key| *key != "id" && *key != "overlay") {
        return Err(format!("unknown key {key:?}: expected id and overlay"));
    }
    let text = |key: &str| match table.get(key) {
        Some(toml::Value::String(text)) => Ok(text.as_str()),
        Some(other) => Err(format!("{key}: {other} is not a string")),
        None => Err(format!("has no {key}")),
    };
    let id = text("id")?;
    let id = id.parse::<OperatorId>().map_err(|error| {
        format!("{id:?} is not an operator id (`sentrymesh operator show` prints one): {error}")
    })?;
    let range = text("overlay")?;
    let range = range.parse::<IpNet>().map_err(|error| match error {
        // The error names the address and its network.
        IpNetError::HostBits { .. } => format!("overlay {error}"),
        _ => format!(
            "overlay {range:?} is not a network (ADDRESS/PREFIX, e.g. 198.19.2.0/24): {error}"
        ),
    })?;
    Ok((id, range))
}
