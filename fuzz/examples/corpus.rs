//! Writes the seed corpus of every fuzz target into `corpus/TARGET/`: a few
//! real inputs each, made from the same fixtures as the targets (see
//! `src/lib.rs` for the input format of `shape`). Run from `fuzz/`:
//!
//! ```text
//! cargo run --example corpus
//! ```
//!
//! The files are named by what they hold; running it again rewrites them
//! with the same bytes.

use std::fs;
use std::path::Path;

use sentrymesh_fuzz::mesh::{bundle, card, gossip, revocation, vouch};
use sentrymesh_fuzz::unchanged;
use sentrymesh_mesh::SealedBundle;
use sentrymesh_mesh::armour::{self, ArmourKind};
use sentrymesh_mesh::testing::operator;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let write = |target: &str, name: &str, bytes: &[u8]| -> std::io::Result<()> {
        let dir = root.join(target);
        fs::create_dir_all(&dir)?;
        fs::write(dir.join(name), bytes)
    };
    let with = |head: &[u8], tail: &[u8]| [head, tail].concat();

    // The engine: flags byte, then `shape`'s input over genuine messages.
    for index in 0..3u8 {
        write(
            "datagram",
            &format!("genuine-{index}"),
            &with(&[2], &unchanged(index)),
        )?;
    }
    write("datagram", "replay-0", &with(&[3], &unchanged(0)))?;
    write("datagram", "roamed-1", &with(&[0], &unchanged(1)))?;
    write("datagram", "header-only", &with(&[2], &[2, 16, 0]))?;
    write("handshake", "initiation", &with(&[0], &unchanged(0)))?;
    write("handshake", "response", &with(&[1], &unchanged(0)))?;
    write(
        "handshake",
        "initiation-under-load",
        &with(&[2], &unchanged(0)),
    )?;
    write(
        "handshake",
        "response-under-load",
        &with(&[3], &unchanged(0)),
    )?;
    write(
        "handshake",
        "initiation-flipped",
        &with(&[0], &[1, 40, 0, 1]),
    )?;
    write("cookie_reply", "genuine", &with(&[0], &unchanged(0)))?;
    write("cookie_reply", "from-stranger", &with(&[1], &unchanged(0)))?;
    write("cookie_reply", "nonce-flipped", &with(&[0], &[1, 10, 0, 1]))?;

    // The offload paths: virtio header and packet.
    write("offload", "tcp4-super", &super_packet(false, 6, 3, 100))?;
    write("offload", "tcp6-super", &super_packet(true, 6, 2, 120))?;
    write("offload", "udp4-super", &super_packet(false, 17, 3, 80))?;
    write(
        "offload",
        "tcp4-plain-needs-csum",
        &super_packet(false, 6, 1, 0),
    )?;

    // The UAPI socket: a cut byte, then the stream.
    let key = |byte: u8| {
        let mut hex = String::new();
        for _ in 0..32 {
            hex.push_str(&format!("{byte:02x}"));
        }
        hex
    };
    let set = format!(
        "set=1\nprivate_key={}\nlisten_port=51820\nreplace_peers=true\npublic_key={}\n\
         preshared_key={}\nendpoint=198.18.0.2:51820\npersistent_keepalive_interval=25\n\
         replace_allowed_ips=true\nallowed_ip=198.18.0.0/24\nallowed_ip=2001:db8::/64\n\n",
        key(0x11),
        key(0x22),
        key(0x33)
    );
    write("uapi", "set", &with(&[0x00], set.as_bytes()))?;
    write("uapi", "get", b"\x03get=1\n\n")?;
    write(
        "uapi",
        "remove-then-get",
        &with(
            &[0x21],
            format!("set=1\npublic_key={}\nremove=true\n\nget=1\n\n", key(0x22)).as_bytes(),
        ),
    )?;
    write("uapi", "truncated", b"\x07set=1\nlisten_port=5")?;

    // The TOML config: the example configs.
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    for name in ["example.toml", "sentry.toml", "producer.toml"] {
        write("config", name, &fs::read(configs.join(name))?)?;
    }

    // The mesh: a form or flags byte, then `shape`'s input or text.
    let card = card(&operator(1));
    write("card", "genuine", &with(&[0], &unchanged(0)))?;
    write("card", "text", &with(&[1], card.to_text().as_bytes()))?;
    let bundle = bundle();
    let text = SealedBundle::decode(&bundle).map_or_else(|_| String::new(), |b| b.to_text());
    write("bundle", "genuine", &with(&[0], &unchanged(0)))?;
    write("bundle", "text", &with(&[1], text.as_bytes()))?;
    write("statement", "vouch", &with(&[0], &unchanged(0)))?;
    write("statement", "revocation", &with(&[2], &unchanged(0)))?;
    let vouch_text = armour::encode(ArmourKind::Vouch, &vouch());
    write(
        "statement",
        "vouch-text",
        &with(&[1], vouch_text.as_bytes()),
    )?;
    let revocation_text = armour::encode(ArmourKind::Revocation, &revocation());
    write(
        "statement",
        "revocation-text",
        &with(&[3], revocation_text.as_bytes()),
    )?;
    let names = ["objects", "digest", "want"];
    for (index, name) in (0u8..).zip(names) {
        write("gossip", name, &with(&[0], &unchanged(index)))?;
    }
    write(
        "gossip",
        "objects-from-stranger",
        &with(&[1], &unchanged(0)),
    )?;
    assert_eq!(gossip().messages.len(), names.len());
    Ok(())
}

/// A TUN read: a virtio header (`NEEDS_CSUM`, GSO by `protocol` and family
/// unless `segments` is 1) and an IPv4 or IPv6 TCP or UDP packet of
/// `segments` payloads of `size` bytes, its checksum field holding the
/// pseudo-header sum as the kernel leaves it.
fn super_packet(is_v6: bool, protocol: u8, segments: usize, size: usize) -> Vec<u8> {
    let transport_len = if protocol == 6 { 20 } else { 8 };
    let payload = if segments == 1 { 40 } else { segments * size };
    let ip_len = if is_v6 { 40 } else { 20 };
    let total = ip_len + transport_len + payload;
    let mut packet = vec![0u8; total];
    let (src, dst): (&[u8], &[u8]) = if is_v6 {
        (
            &[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            &[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
        )
    } else {
        (&[198, 18, 0, 1], &[198, 18, 0, 2])
    };
    if is_v6 {
        packet[0] = 0x60;
        packet[4..6].copy_from_slice(&((total - 40) as u16).to_be_bytes());
        packet[6] = protocol;
        packet[7] = 64;
        packet[8..24].copy_from_slice(src);
        packet[24..40].copy_from_slice(dst);
    } else {
        packet[0] = 0x45;
        packet[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        packet[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        packet[6] = 0x40; // don't fragment
        packet[8] = 64;
        packet[9] = protocol;
        packet[12..16].copy_from_slice(src);
        packet[16..20].copy_from_slice(dst);
        let sum = fold(sum16(&packet[..20]));
        packet[10..12].copy_from_slice(&(!sum).to_be_bytes());
    }
    let transport = ip_len;
    packet[transport..transport + 2].copy_from_slice(&40_000u16.to_be_bytes());
    packet[transport + 2..transport + 4].copy_from_slice(&5201u16.to_be_bytes());
    let csum_offset = if protocol == 6 {
        packet[transport + 4..transport + 8].copy_from_slice(&1_000_000u32.to_be_bytes());
        packet[transport + 8..transport + 12].copy_from_slice(&7u32.to_be_bytes());
        packet[transport + 12] = 5 << 4;
        packet[transport + 13] = 0x10; // ACK
        packet[transport + 14..transport + 16].copy_from_slice(&64_240u16.to_be_bytes());
        16
    } else {
        let len = (transport_len + payload) as u16;
        packet[transport + 4..transport + 6].copy_from_slice(&len.to_be_bytes());
        6
    };
    for (i, byte) in packet[transport + transport_len..].iter_mut().enumerate() {
        *byte = (i % 251) as u8;
    }
    let pseudo = sum16(src) + sum16(dst) + u64::from(protocol) + (total - ip_len) as u64;
    packet[transport + csum_offset..transport + csum_offset + 2]
        .copy_from_slice(&fold(pseudo).to_be_bytes());
    let gso_type: u8 = match (segments, protocol, is_v6) {
        (1, _, _) => 0,
        (_, 6, false) => 1,
        (_, 6, true) => 4,
        _ => 5,
    };
    let gso_size = if segments == 1 { 0 } else { size as u16 };
    let mut read = vec![1, gso_type];
    read.extend_from_slice(&((ip_len + transport_len) as u16).to_le_bytes());
    read.extend_from_slice(&gso_size.to_le_bytes());
    read.extend_from_slice(&(ip_len as u16).to_le_bytes());
    read.extend_from_slice(&(csum_offset as u16).to_le_bytes());
    read.extend_from_slice(&packet);
    read
}

/// The ones'-complement sum of big-endian 16-bit words, unfolded.
fn sum16(data: &[u8]) -> u64 {
    data.chunks(2)
        .map(|word| u64::from(u16::from_be_bytes([word[0], *word.get(1).unwrap_or(&0)])))
        .sum()
}

/// Folds a sum to 16 bits, not complemented.
fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}
