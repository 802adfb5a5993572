//! What the member tells `sentrymesh status` ([`MeshView`]), what it
//! remembers for it (the objects refused lately), and the requests the
//! daemon's other tasks send it.

use std::collections::VecDeque;

use sentrymesh_mesh::{CardRefusal, Object, Refusal, SignedCard};
use tokio::sync::{mpsc, oneshot};

use super::{MeshCounters, MeshMember, unix_seconds};
use crate::control::status::{MeshView, RefusedObject};

/// How many refused objects are remembered for the status.
const MAX_REFUSED: usize = 32;

/// What the daemon's other tasks ask a running member for.
pub struct Requests {
    /// Its counters, for metrics.
    pub counters: mpsc::Receiver<oneshot::Sender<MeshCounters>>,
    /// What it knows, for `sentrymesh status`.
    pub views: mpsc::Receiver<oneshot::Sender<MeshView>>,
}

/// The objects refused lately, newest last.
#[derive(Debug, Default)]
pub(super) struct RecentRefusals {
    entries: VecDeque<RefusedObject>,
}

impl RecentRefusals {
    /// Remembers an object the store refused.
    pub(super) fn object(&mut self, refusal: &Refusal) {
        self.push(RefusedObject {
            object: format!("object {}", refusal.id),
            reason: refusal.error.to_string(),
        });
    }

    /// Remembers a card refused for its claims; the reason names no prefix.
    pub(super) fn card(&mut self, refusal: &CardRefusal) {
        self.push(RefusedObject {
            object: format!(
                "card of host {} (serial {}) of operator {}",
                refusal.name, refusal.serial, refusal.operator
            ),
            reason: refusal.reason.to_string(),
        });
    }

    fn push(&mut self, entry: RefusedObject) {
        if self.entries.len() == MAX_REFUSED {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }
}

impl MeshMember {
    /// What the member knows now, for `sentrymesh status`: the cards of
    /// its store and of its known directory, each as it stands.
    pub(super) fn view(&self) -> MeshView {
        let known_cards = self.known.iter().filter_map(|object| match object {
            Object::Card(card) => Some(card),
            _ => None,
        });
        let known_cards: Vec<&SignedCard> = known_cards.collect();
        MeshView {
            local: self.mesh.local_card().card().clone(),
            local_error: self.mesh.local_error().map(ToString::to_string),
            admissions: self.mesh.admissions(),
            peers: self.mesh.peers().cloned().collect(),
            standings: self.mesh.card_standings(known_cards, unix_seconds()),
            refused: self.refused.entries.iter().cloned().collect(),
            aliases: self.settings.aliases.clone(),
        }
    }
}
