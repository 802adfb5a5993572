//! Genuine mesh objects to mutate, and a member to receive gossip: the
//! fixtures of the mesh crate's own malformed-input tests, from fixed keys.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::collections::BTreeMap;

use sentrymesh_mesh::bundle::seal;
use sentrymesh_mesh::gossip::{BUCKET_HASH_LEN, BucketSum, IdRange, ROOT_HASH_LEN, ViewRoot};
use sentrymesh_mesh::sim::{host_card, policy};
use sentrymesh_mesh::testing::{NOW, SignCard, operator, wg_key};
use sentrymesh_mesh::{
    ChainP2p, GossipMessage, HostCard, Mesh, Object, ObjectId, OperatorSecret, PeerEvent,
    Revocation, RevocationTarget, Role, SignedCard, Store, Vouch,
};

/// A card with every kind of field filled: addresses, endpoints of each
/// kind, allowed IPs and a chain peer id with a nodeos peer key.
///
/// # Panics
///
/// If the fixture does not sign: it is broken.
pub fn card(op: &OperatorSecret) -> SignedCard {
    HostCard {
        operator: op.operator_id(),
        name: "sentry-1".into(),
        role: Role::Sentry,
        wg_public_key: wg_key([7; 32]),
        addresses: vec!["198.18.1.1/24".parse().expect("address")],
        endpoints: vec![
            "198.18.0.1:51820".parse().expect("endpoint"),
            "[2001:db8::1]:51820".parse().expect("endpoint"),
            "sentry-1.example.net:51820".parse().expect("endpoint"),
        ],
        allowed_ips: vec!["198.19.0.0/16".parse().expect("range")],
        not_before: NOW - 3600,
        not_after: NOW + 86_400,
        serial: 3,
        chain_p2p: Some(ChainP2p {
            nodeos_peer_key: Some(
                "EOS6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CV"
                    .parse()
                    .expect("nodeos peer key"),
            ),
            .."f2a1b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4@26656"
                .parse()
                .expect("chain peer")
        }),
    }
    .sign(op)
    .expect("sign the card")
}

/// A bundle from operator 1 to operators 2 and 3 with [`card`] of operator 1.
///
/// # Panics
///
/// If the fixture does not seal: it is broken.
pub fn bundle() -> Vec<u8> {
    let alice = operator(1);
    seal(
        &alice,
        &[operator(2).operator_id(), operator(3).operator_id()],
        &[card(&alice)],
        NOW,
        &mut ChaCha20Rng::seed_from_u64(1),
    )
    .expect("seal the bundle")
    .as_bytes()
    .to_vec()
}

/// Operator 1's vouch for operator 2.
///
/// # Panics
///
/// If the fixture does not sign: it is broken.
pub fn vouch() -> Vec<u8> {
    Vouch {
        voucher: operator(1).operator_id(),
        subject: operator(2).operator_id(),
        overlay: "198.19.9.0/24".parse().expect("range"),
        issued_at: NOW,
    }
    .sign(&operator(1))
    .expect("sign the vouch")
    .as_bytes()
    .to_vec()
}

/// Operator 1's revocation of a host key.
///
/// # Panics
///
/// If the fixture does not sign: it is broken.
pub fn revocation() -> Vec<u8> {
    Revocation {
        issuer: operator(1).operator_id(),
        target: RevocationTarget::Host(wg_key([7; 32])),
        issued_at: NOW,
    }
    .sign(&operator(1))
    .expect("sign the revocation")
    .as_bytes()
    .to_vec()
}

/// A member of operator 1 with one peer, and valid gossip messages from
/// that peer carrying objects the member does not hold.
pub struct GossipFixture {
    /// The receiving member's card.
    pub own: SignedCard,
    /// Its peer's card.
    pub peer: SignedCard,
    /// The objects the member does not hold: a card of another
    /// operator's, a card of its own operator's, a vouch and a revocation
    /// (of the peer).
    pub objects: Vec<Object>,
    /// An objects, a digest, a want, a summary, a buckets and a ranges
    /// message from the peer.
    pub messages: Vec<Vec<u8>>,
    /// The member, built once: [`GossipFixture::member`] copies it.
    member: Mesh,
}

/// [`GossipFixture`]: the mesh crate's `malformed_gossip` fixture.
///
/// # Panics
///
/// If the fixture does not sign or encode: it is broken.
pub fn gossip() -> GossipFixture {
    let own = host_card(1, "sentry-1", Role::Sentry, 1);
    let peer = host_card(1, "sentry-2", Role::Sentry, 2);
    let objects: Vec<Object> = vec![
        host_card(2, "sentry-1", Role::Sentry, 3).into(),
        host_card(1, "producer", Role::Producer, 4).into(),
        Vouch {
            voucher: operator(2).operator_id(),
            subject: operator(3).operator_id(),
            overlay: "198.19.9.0/24".parse().expect("range"),
            issued_at: NOW,
        }
        .sign(&operator(2))
        .expect("sign the vouch")
        .into(),
        Revocation {
            issuer: operator(1).operator_id(),
            target: RevocationTarget::Host(peer.card().wg_public_key),
            issued_at: NOW,
        }
        .sign(&operator(1))
        .expect("sign the revocation")
        .into(),
    ];
    let ids: Vec<_> = objects.iter().map(Object::id).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    let root = ViewRoot {
        count: 4,
        hash: [3; ROOT_HASH_LEN],
    };
    let messages = vec![
        GossipMessage::Objects {
            objects: objects.clone(),
        }
        .encode()
        .expect("encode objects"),
        GossipMessage::Digest { ids: ids.clone() }
            .encode()
            .expect("encode a digest"),
        GossipMessage::Want { ids: ids.clone() }
            .encode()
            .expect("encode a want"),
        GossipMessage::Summary { root }
            .encode()
            .expect("encode a summary"),
        GossipMessage::Buckets {
            root,
            buckets: ids
                .iter()
                .map(|id| {
                    (
                        id.as_bytes()[0],
                        BucketSum {
                            count: 1,
                            hash: [7; BUCKET_HASH_LEN],
                        },
                    )
                })
                .collect::<BTreeMap<_, _>>()
                .into_iter()
                .collect(),
        }
        .encode()
        .expect("encode buckets"),
        GossipMessage::Ranges {
            root,
            ranges: vec![IdRange {
                first: ObjectId::from_bytes([0; 32]),
                last: ObjectId::from_bytes([0xff; 32]),
                ids: sorted,
            }],
        }
        .encode()
        .expect("encode ranges"),
    ];
    GossipFixture {
        member: member(&own, &peer),
        own,
        peer,
        objects,
        messages,
    }
}

/// A member with card `own` holding `peer`'s card, the peer admitted and
/// its event taken.
///
/// # Panics
///
/// If the member does not take its peer: the fixture is broken.
fn member(own: &SignedCard, peer: &SignedCard) -> Mesh {
    let mut store = Store::new();
    store
        .insert_card(peer.clone(), NOW)
        .expect("store the peer's card");
    let mut mesh = Mesh::new(own.clone(), policy(1, &[2], 1), store, NOW).expect("a member");
    assert!(mesh.is_admitted_peer(&peer.card().wg_public_key));
    assert!(matches!(mesh.poll_event(), Some(PeerEvent::Added(_))));
    assert!(mesh.poll_event().is_none());
    mesh
}

impl GossipFixture {
    /// A fresh member holding the peer's card, the peer admitted: a copy
    /// of the one the fixture built (a cloned `Mesh` shares nothing with
    /// the original), so every input starts from the same state without
    /// building a member, with its signature checks, each time.
    pub fn member(&self) -> Mesh {
        self.member.clone()
    }
}
