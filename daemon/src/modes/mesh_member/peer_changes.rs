//! The mesh's peer changes as the interface takes them.
//!
//! All the changes of one round go in one [`ConfigChange`], which the
//! interface applies completely or not at all. When it refuses the request,
//! each change is sent again alone, so that a peer the interface refuses —
//! a key it cannot peer with, a full peer table — is skipped, with a
//! warning naming the host (once, while it stays refused) and a counter,
//! and never takes the other peers, or the member, with it. Whatever a
//! card says, it cannot stop a member: every mesh member would otherwise
//! exit on the same card, and anti-entropy would bring it back after each
//! restart.

use std::collections::BTreeSet;

use anyhow::Result;
use sentrymesh_mesh::OperatorId;
use sentrymesh_types::PublicKey;

use crate::dataplane::change::{ChangeError, ConfigChange, PeerChange};
use crate::dataplane::handle::DeviceHandle;

/// A change to one peer, with the card's host name and operator for the
/// log when it is an addition or a change.
#[derive(Debug)]
pub(super) struct Change {
    /// The change for the interface.
    pub(super) change: PeerChange,
    /// The peer's host name and operator; `None` for a removal.
    pub(super) host: Option<(String, OperatorId)>,
}

/// The peers the interface refuses, and how many changes it refused.
#[derive(Debug, Default)]
pub(super) struct RefusedPeers {
    /// The peers refused last time they were sent, already warned of.
    refused: BTreeSet<PublicKey>,
    /// Every change refused and skipped.
    total: u64,
}

impl RefusedPeers {
    /// How many changes the interface refused and the member skipped.
    pub(super) fn total(&self) -> u64 {
        self.total
    }

    /// Applies `changes` to the `device`, skipping what the interface
    /// refuses; returns the keys of the peers refused.
    ///
    /// # Errors
    ///
    /// Only when the device's run loop stopped.
    pub(super) async fn apply(
        &mut self,
        device: &DeviceHandle,
        changes: Vec<Change>,
    ) -> Result<Vec<PublicKey>> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let all = changes.iter().map(|c| c.change.clone()).collect();
        if set(device, all).await?.is_ok() {
            for change in &changes {
                self.refused.remove(change.change.public_key());
            }
            return Ok(Vec::new());
        }
        let mut refused = Vec::new();
        for Change { change, host } in changes {
            let key = *change.public_key();
            match set(device, vec![change]).await? {
                Ok(()) => {
                    self.refused.remove(&key);
                }
                Err(error) => {
                    self.total += 1;
                    self.warn_once(key, host.as_ref(), &error);
                    refused.push(key);
                }
            }
        }
        Ok(refused)
    }

    /// Logs a refusal: a warning the first time the peer is refused, then
    /// at debug level until the interface takes it.
    fn warn_once(
        &mut self,
        key: PublicKey,
        host: Option<&(String, OperatorId)>,
        error: &ChangeError,
    ) {
        let who = match host {
            Some((name, operator)) => format!("mesh peer {}", super::host_label(name, operator)),
            None => "the removal of a mesh peer".to_owned(),
        };
        if self.refused.insert(key) {
            tracing::warn!("the interface refused {who} ({error}); skipped, the rest go on");
        } else {
            tracing::debug!("the interface refused {who} again ({error})");
        }
    }
}

/// Applies one change with `peers` to the device; the outer error is the
/// run loop gone, the inner the interface's refusal.
async fn set(device: &DeviceHandle, peers: Vec<PeerChange>) -> Result<Result<(), ChangeError>> {
    let change = ConfigChange {
        peers,
        ..ConfigChange::default()
    };
    match device.apply(change).await {
        Err(ChangeError::DeviceGone(gone)) => Err(gone.into()),
        result => Ok(result),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use sentrymesh_mesh::OperatorSecret;
    use sentrymesh_types::PrivateKey;

    use super::*;
    use crate::dataplane::change::PeerUpdate;
    use crate::dataplane::handle::Command;
    use crate::dataplane::interface::Interface;

    /// A run loop with a real [`Interface`] that has a key, applying changes
    /// as the device does (check, then commit); returns a handle to it and
    /// the task, which yields the interface's peers when the handle is
    /// dropped.
    fn run_loop() -> (DeviceHandle, tokio::task::JoinHandle<Vec<PublicKey>>) {
        let (device, _, mut commands) = crate::dataplane::handle::channel();
        let task = tokio::spawn(async move {
            let mut interface = Interface::new(Instant::now(), Duration::from_secs(1_777_593_600));
            let key = PrivateKey::generate(&mut ChaCha20Rng::seed_from_u64(1));
            interface.commit(
                Instant::now(),
                ConfigChange {
                    private_key: Some(Some(key)),
                    ..ConfigChange::default()
                },
            );
            while let Some(command) = commands.recv().await {
                if let Command::Apply(change, answer) = command {
                    let result = interface.check(&change);
                    if result.is_ok() {
                        interface.commit(Instant::now(), change);
                    }
                    let _ = answer.send(result);
                }
            }
            interface.engine().peers().map(|(key, _)| *key).collect()
        });
        (device, task)
    }

    fn add(key: PublicKey, name: &str) -> Change {
        Change {
            change: PeerChange::Set(PeerUpdate::new(key)),
            host: Some((
                name.to_owned(),
                OperatorSecret::from_seed([3; 32]).operator_id(),
            )),
        }
    }

    #[tokio::test]
    async fn a_peer_the_interface_refuses_is_skipped_and_the_rest_go_on() {
        let (requests, task) = run_loop();
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let good: Vec<PublicKey> = (0..2)
            .map(|_| PrivateKey::generate(&mut rng).public_key())
            .collect();
        // A key of low order (u = 1): X25519 with it is zero, so the
        // interface cannot peer with it. Cards with such keys are refused
        // when decoded; this is what the member does with whatever else
        // the interface refuses.
        let mut low_order = [0u8; 32];
        low_order[0] = 1;
        let bad = PublicKey::from_bytes(low_order);
        let mut refused = RefusedPeers::default();
        let changes = vec![
            add(good[0], "sentry-1"),
            add(bad, "bad"),
            add(good[1], "sentry-2"),
        ];
        assert_eq!(refused.apply(&requests, changes).await.unwrap(), [bad]);
        assert_eq!(refused.total(), 1);
        // Refused again when it comes back, counted again, warned of once.
        let again = vec![add(bad, "bad")];
        assert_eq!(refused.apply(&requests, again).await.unwrap(), [bad]);
        assert_eq!(refused.total(), 2);
        assert_eq!(refused.refused.len(), 1);
        // And the member goes on: a later change is applied.
        let later = PrivateKey::generate(&mut rng).public_key();
        assert!(
            refused
                .apply(&requests, vec![add(later, "sentry-3")])
                .await
                .unwrap()
                .is_empty()
        );
        drop(requests);
        let mut peers = task.await.unwrap();
        peers.sort();
        let mut expected = vec![good[0], good[1], later];
        expected.sort();
        assert_eq!(peers, expected);
    }

    /// Keys of low order (u = 0, 1, -1 and the two of order 8), which no
    /// interface takes, little-endian hex.
    const LOW_ORDER: [&str; 5] = [
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ];

    fn low_order(index: usize) -> PublicKey {
        let hex = LOW_ORDER[index % LOW_ORDER.len()];
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
        }
        PublicKey::from_bytes(bytes)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 32,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// Any rounds of additions and removals, good keys and keys of low
        /// order mixed: nothing but a stopped run loop is an error, every
        /// refused change is a low-order key, and the interface ends with
        /// exactly the good keys added and not removed since.
        #[test]
        fn no_round_of_changes_stops_the_member(
            rounds in proptest::collection::vec(
                proptest::collection::vec((0u8..3, 0usize..8, proptest::bool::ANY), 1..6),
                1..6,
            ),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            runtime.block_on(async {
                let (requests, task) = run_loop();
                let mut refused = RefusedPeers::default();
                let mut expected = BTreeSet::new();
                let mut refusals = 0;
                for round in &rounds {
                    let mut changes = Vec::new();
                    for &(kind, index, remove) in round {
                        let key = match kind {
                            0 => low_order(index),
                            _ => PrivateKey::from_bytes([index as u8 + 1; 32]).public_key(),
                        };
                        let mut change = add(key, "host");
                        if remove {
                            change.change = PeerChange::Remove(key);
                        }
                        changes.push(change);
                    }
                    // The interface takes the last change of a key.
                    let mut last = std::collections::BTreeMap::new();
                    for change in &changes {
                        let removed = matches!(change.change, PeerChange::Remove(_));
                        last.insert(*change.change.public_key(), removed);
                    }
                    let skipped = refused.apply(&requests, changes).await.unwrap();
                    for key in &skipped {
                        assert!((0..LOW_ORDER.len()).any(|i| low_order(i) == *key));
                    }
                    refusals += skipped.len();
                    for (key, remove) in last {
                        if remove {
                            expected.remove(&key);
                        } else if !skipped.contains(&key) {
                            expected.insert(key);
                        }
                    }
                }
                assert_eq!(refused.total(), refusals as u64);
                drop(requests);
                let peers: BTreeSet<PublicKey> = task.await.unwrap().into_iter().collect();
                assert_eq!(peers, expected);
            });
        }
    }

    #[tokio::test]
    async fn only_a_stopped_run_loop_is_an_error() {
        let (requests, task) = run_loop();
        drop(task);
        let (closed, _, commands) = crate::dataplane::handle::channel();
        drop(commands);
        let mut refused = RefusedPeers::default();
        let key = PrivateKey::generate(&mut ChaCha20Rng::seed_from_u64(3)).public_key();
        let error = refused
            .apply(&closed, vec![add(key, "sentry-1")])
            .await
            .unwrap_err();
        assert_eq!(error.to_string(), "the device's run loop stopped");
        assert!(
            refused
                .apply(&requests, Vec::new())
                .await
                .unwrap()
                .is_empty()
        );
    }
}
