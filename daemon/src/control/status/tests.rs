//! The status document against its schema in `docs/status.md`, and what
//! it must never show.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sentrymesh_mesh::{
    HostCard, Mesh, OperatorSecret, Overlay, Role, SignedCard, Store, TrustPolicy, Vouch,
};
use sentrymesh_types::{PrivateKey, UnixTime};
use serde_json::Value;

use super::*;
use crate::dataplane::state::PeerState;

const NOW: UnixTime = UnixTime(1_777_593_600);
/// Where the hidden producer's handshakes came from: never to be shown.
const PRODUCER_ADDRESS: &str = "198.18.0.99:40000";

/// The schema: each documented field with its type.
fn schema() -> BTreeMap<String, String> {
    let doc = include_str!("../../../../docs/status.md");
    doc.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("| `")?;
            let (field, rest) = rest.split_once("` | ")?;
            let (kind, _) = rest.split_once(" | ")?;
            Some((field.to_owned(), kind.to_owned()))
        })
        .collect()
}

/// Every field of `value` under `path`, with its value, arrays' elements
/// as `path[]`.
fn fields<'a>(path: &str, value: &'a Value, out: &mut Vec<(String, &'a Value)>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                out.push((path.clone(), inner));
                fields(&path, inner, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                let path = format!("{path}[]");
                out.push((path.clone(), item));
                fields(&path, item, out);
            }
        }
        _ => {}
    }
}

fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(number) if number.is_u64() || number.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Checks every field of `status` against the schema: documented, and of
/// the documented type; returns the fields seen.
fn check_against_schema(status: &Status) -> BTreeSet<String> {
    let schema = schema();
    let json = serde_json::to_value(status).unwrap();
    let mut seen = Vec::new();
    fields("", &json, &mut seen);
    for (path, value) in &seen {
        let documented = schema
            .get(path)
            .unwrap_or_else(|| panic!("{path} is not in docs/status.md"));
        let actual = type_of(value);
        let allowed = documented == actual
            || (actual == "null" && documented.ends_with(" or null"))
            || documented.strip_suffix(" or null") == Some(actual);
        assert!(allowed, "{path} is {actual}, documented as {documented}");
    }
    // Round trip: the client reads what the daemon writes.
    let text = serde_json::to_string(status).unwrap();
    assert!(!text.contains('\n'), "one line on the wire");
    assert_eq!(&serde_json::from_str::<Status>(&text).unwrap(), status);
    seen.into_iter().map(|(path, _)| path).collect()
}

fn operator(seed: u8) -> OperatorSecret {
    OperatorSecret::from_seed([seed; 32])
}

/// A card of `op`'s host `name`, at 198.19.`range`.`n`/32.
fn card(op: &OperatorSecret, range: u8, name: &str, role: Role, n: u8) -> SignedCard {
    let key = PrivateKey::from_bytes([range.wrapping_mul(16).wrapping_add(n) | 1; 32]);
    HostCard {
        operator: op.operator_id(),
        name: name.to_owned(),
        role,
        wg_public_key: key.public_key(),
        addresses: vec![format!("198.19.{range}.{n}/32").parse().unwrap()],
        endpoints: if role.is_hidden() {
            vec![]
        } else {
            vec![format!("198.18.{range}.{n}:51820").parse().unwrap()]
        },
        allowed_ips: vec![],
        not_before: NOW - 60,
        not_after: NOW + 86_400,
        serial: 1,
        chain_p2p: None,
    }
    .issue(op, &key, &mut ChaCha20Rng::seed_from_u64(n.into()))
    .unwrap()
}

fn vouch(by: &OperatorSecret, subject: &OperatorSecret, range: u8) -> sentrymesh_mesh::SignedVouch {
    Vouch {
        voucher: by.operator_id(),
        subject: subject.operator_id(),
        overlay: format!("198.19.{range}.0/24").parse().unwrap(),
        issued_at: NOW,
    }
    .sign(by)
    .unwrap()
}

/// Operator a's sentry, trusting b directly with k = 2: its producer (a
/// session expired), b's sentries (one live, one silent), c's sentry
/// (vouched in by a and b, live), and d's sentry (vouched for by b
/// only, its card from the known directory).
fn mesh_view() -> (MeshView, DeviceState, Vec<PublicKey>) {
    let (a, b, c, d) = (operator(1), operator(2), operator(3), operator(4));
    let local = card(&a, 1, "a-sentry", Role::Sentry, 1);
    let producer = card(&a, 1, "a-producer", Role::Producer, 2);
    let b1 = card(&b, 2, "b-sentry-1", Role::Sentry, 1);
    let b2 = card(&b, 2, "b-sentry-2", Role::Sentry, 2);
    let c1 = card(&c, 3, "c-sentry", Role::Sentry, 1);
    let d1 = card(&d, 4, "d-sentry", Role::Sentry, 1);
    let overlay = Overlay::new(
        "198.19.0.0/16".parse().unwrap(),
        [
            (a.operator_id(), "198.19.1.0/24".parse().unwrap()),
            (b.operator_id(), "198.19.2.0/24".parse().unwrap()),
        ],
    )
    .unwrap();
    let policy = TrustPolicy::new(a.operator_id(), [b.operator_id()], 2, overlay).unwrap();
    let mut store = Store::new();
    for card in [&producer, &b1, &b2] {
        store.insert_card(card.clone(), NOW).unwrap();
    }
    for v in [vouch(&a, &c, 3), vouch(&b, &c, 3), vouch(&b, &d, 4)] {
        store.insert_vouch(v, NOW).unwrap();
    }
    let mut mesh = Mesh::new(local.clone(), policy, store, NOW).unwrap();
    mesh.insert(c1.clone(), NOW).unwrap();
    let view = MeshView {
        local: local.card().clone(),
        local_error: None,
        admissions: mesh.admissions(),
        peers: mesh.peers().cloned().collect(),
        standings: mesh.card_standings([&d1], NOW),
        refused: vec![RefusedObject {
            object: "host e-sentry of operator E".into(),
            reason: "an allowed IP outside its operator's overlay range".into(),
        }],
        aliases: BTreeMap::from([(b.operator_id(), "bob".to_owned())]),
    };
    let now = Duration::from_secs(NOW.0);
    let peer = |card: &SignedCard, endpoint: Option<&str>, handshake: Option<u64>| PeerState {
        public_key: card.card().wg_public_key,
        endpoint: endpoint.map(|e| e.parse::<SocketAddr>().unwrap()),
        last_handshake: handshake.map(|ago| now - Duration::from_secs(ago)),
        rx_bytes: 1000,
        tx_bytes: 2000,
        persistent_keepalive: None,
        allowed_ips: card
            .card()
            .addresses
            .iter()
            .map(|a| sentrymesh_types::IpNet::host(a.addr()))
            .collect(),
    };
    let mut peers = vec![
        peer(&producer, Some(PRODUCER_ADDRESS), Some(200)),
        peer(&b1, Some("198.18.2.1:51820"), Some(5)),
        peer(&b2, Some("198.18.2.2:51820"), None),
        peer(&c1, Some("198.18.3.1:51820"), Some(7)),
    ];
    peers.sort_by_key(|p| p.public_key);
    let state = DeviceState {
        listen_port: 51820,
        fwmark: None,
        peers,
    };
    let live = vec![b1.card().wg_public_key, c1.card().wg_public_key];
    (view, state, live)
}

#[test]
fn a_mesh_members_status_matches_the_schema_and_hides_the_hidden() {
    let (view, state, live) = mesh_view();
    let now = Duration::from_secs(NOW.0);
    let status = build("sm0", Mode::Mesh, &state, &live, Some(3), Some(&view), now);
    let seen = check_against_schema(&status);
    // Every documented field shows in a mesh member's status.
    let missing: Vec<_> = schema()
        .into_keys()
        .filter(|field| !seen.contains(field))
        .collect();
    assert!(missing.is_empty(), "never written: {missing:?}");

    assert_eq!(status.version, 1);
    assert_eq!(
        status.readiness,
        Some(Readiness {
            live: 2,
            required: 3,
            ready: false
        })
    );
    let json = serde_json::to_string(&status).unwrap();
    let producer_ip = PRODUCER_ADDRESS.split(':').next().unwrap();
    assert!(
        !json.contains(producer_ip),
        "a hidden host's address: {json}"
    );
    let by_host = |host: &str| {
        status
            .peers
            .iter()
            .find(|p| p.mesh.as_ref().is_some_and(|m| m.host == host))
            .unwrap()
    };
    let producer = by_host("a-producer");
    assert_eq!(producer.endpoint.as_deref(), Some(HIDDEN));
    assert_eq!(producer.session, "expired");
    assert_eq!(producer.latest_handshake_secs_ago, Some(200));
    let b1 = by_host("b-sentry-1");
    assert_eq!(b1.session, "live");
    let b1_mesh = b1.mesh.as_ref().unwrap();
    assert_eq!(b1_mesh.operator.alias.as_deref(), Some("bob"));
    assert_eq!(b1_mesh.trust.path, "direct");
    let c = by_host("c-sentry").mesh.as_ref().unwrap();
    assert_eq!(c.trust.path, "vouched");
    assert_eq!(c.trust.vouched_by.len(), 2);

    let mesh = status.mesh.as_ref().unwrap();
    assert_eq!(mesh.admitted_operators[0].trust.path, "local");
    assert_eq!(mesh.admitted_operators.len(), 3);
    let reasons: BTreeMap<&str, &Reason> = mesh
        .not_connected
        .iter()
        .map(|n| (n.host.as_str(), &n.reason))
        .collect();
    assert_eq!(reasons["a-producer"].kind, "no_endpoint");
    assert_eq!(reasons["b-sentry-2"].kind, "no_answer");
    assert!(!reasons.contains_key("b-sentry-1") && !reasons.contains_key("c-sentry"));
    let d = reasons["d-sentry"];
    assert_eq!(d.kind, "not_admitted");
    let vouches = d.vouches.as_ref().unwrap();
    assert_eq!((vouches.needed, vouches.missing), (2, 1));
    assert_eq!(vouches.vouched_by[0].alias.as_deref(), Some("bob"));
    assert_eq!(vouches.could_vouch.len(), 1, "a, this host's own operator");
    assert!(d.message.contains("1 of the 2 vouches"), "{}", d.message);
}

#[test]
fn a_wg_interface_has_the_wireguard_fields_only() {
    let (_, state, live) = mesh_view();
    let now = Duration::from_secs(NOW.0);
    let status = build("wg0", Mode::Wg, &state, &live, None, None, now);
    let seen = check_against_schema(&status);
    assert!(seen.iter().all(|field| !field.starts_with("mesh.")
        && !field.starts_with("peers[].mesh.")
        && !field.starts_with("readiness.")));
    assert_eq!((status.mesh, status.readiness), (None, None));
    assert_eq!(status.mode, "wg");
    assert_eq!(status.version, STATUS_VERSION);
    // Without a mesh nothing is known to be hidden: the endpoint shows.
    assert!(
        status
            .peers
            .iter()
            .any(|p| p.endpoint.as_deref() == Some(PRODUCER_ADDRESS))
    );
    assert!(status.peers.iter().all(|p| p.mesh.is_none()));
}
