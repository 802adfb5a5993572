//! Checks `[mesh]` and `[trust]`: a mesh member needs both, and takes its
//! peers from cards, not from `[[peer]]` sections.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sentrymesh_mesh::OperatorId;
use toml::Spanned;

use super::Checker;
use crate::config::MeshSettings;
use crate::config::raw::{RawConfig, RawMesh, RawTrust};

/// The UDP port gossip uses on the overlay when the config names none.
pub(in crate::config) const DEFAULT_GOSSIP_PORT: u16 = 51900;
/// The most operators `[trust] operators` may name.
const MAX_TRUSTED_OPERATORS: usize = 256;

impl Checker<'_> {
    /// `Some(None)` for a config without a mesh, `Some(Some(_))` for a valid
    /// mesh, `None` when a problem was reported.
    pub(super) fn mesh(&mut self, raw: &RawConfig) -> Option<Option<MeshSettings>> {
        match (&raw.mesh, &raw.trust) {
            (None, None) => Some(None),
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
                let settings = self.mesh_settings(mesh.get_ref(), trust.get_ref());
                (raw.peers.is_empty() && settings.is_some()).then_some(settings)
            }
        }
    }

    fn mesh_settings(&mut self, mesh: &RawMesh, trust: &RawTrust) -> Option<MeshSettings> {
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
        let operators = self.trusted_operators(trust);
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
            trusted_operators: operators?,
            vouch_threshold: vouch_threshold?,
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

    fn trusted_operators(&mut self, trust: &RawTrust) -> Option<BTreeSet<OperatorId>> {
        let list = trust.operators.get_ref();
        if list.len() > MAX_TRUSTED_OPERATORS {
            let message = format!(
                "names {} operators; at most {MAX_TRUSTED_OPERATORS}",
                list.len()
            );
            self.report(trust.operators.span(), "trust.operators", message);
            return None;
        }
        let mut seen = BTreeSet::new();
        let mut valid = true;
        for (i, text) in list.iter().enumerate() {
            let key = format!("trust.operators[{i}]");
            let checked = match text.get_ref().parse::<OperatorId>() {
                Err(error) => Err(format!(
                    "{:?} is not an operator id (`sentrymesh operator show` prints one): {error}",
                    text.get_ref()
                )),
                Ok(id) if !seen.insert(id) => Err(format!("{id} is listed twice")),
                Ok(_) => Ok(()),
            };
            if let Err(message) = checked {
                self.report(text.span(), &key, message);
                valid = false;
            }
        }
        valid.then_some(seen)
    }
}
