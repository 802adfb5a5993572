//! `handshake-flood`: floods a WireGuard responder with handshake
//! initiations that carry a valid `mac1` for its public key (everything
//! else random: sender index, ephemeral key, encrypted static key and
//! timestamp; `mac2` zero, as a sender without a cookie sends it, or
//! random with `--mac2 random`), from many spoofed source addresses, as
//! fast as one core sends them. Each costs a responder that is not under load its
//! Diffie-Hellman operations before it fails; one under load answers with a
//! cookie reply.
//!
//! ```text
//! handshake-flood --key BASE64 --target 198.18.0.2:51820 \
//!     [--sources 20000] [--source-base 198.18.16.0] [--seconds 10] [--count N] [--seed N]
//!     [--mac2 zero|random]
//! ```
//!
//! It writes IPv4 headers itself on a raw socket (`IPPROTO_RAW`, which
//! implies `IP_HDRINCL`), so it needs `CAP_NET_RAW`; run it inside a test
//! network namespace. Sources and target must lie in 198.18.0.0/15, the
//! benchmarking range, so it cannot be pointed at anything else. It stops
//! after `--seconds` or `--count` datagrams, whichever comes first, and
//! prints what it sent.

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use sentrymesh_types::{PublicKey, blake2s};

/// The length of an initiation, and where its `mac1` and `mac2` start.
const INITIATION_LEN: usize = 148;
const MAC1_OFFSET: usize = 116;
const MAC2_OFFSET: usize = 132;
/// The source port of every datagram.
const SOURCE_PORT: u16 = 40_000;

/// What to flood, from where, for how long.
struct Options {
    key: PublicKey,
    target: SocketAddrV4,
    sources: u32,
    source_base: Ipv4Addr,
    seconds: u64,
    count: u64,
    seed: u64,
    /// Whether `mac2` is random bytes rather than zero.
    random_mac2: bool,
}

fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("handshake-flood: {message}");
            return ExitCode::from(2);
        }
    };
    match flood(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("handshake-flood: {error}");
            ExitCode::FAILURE
        }
    }
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut key = None;
    let mut target = None;
    let mut options = Options {
        key: PublicKey::from_bytes([0; 32]),
        target: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
        sources: 20_000,
        source_base: Ipv4Addr::new(198, 18, 16, 0),
        seconds: 10,
        count: u64::MAX,
        seed: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos() as u64),
        random_mac2: false,
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |what: &str| format!("{flag}: `{value}` is not {what}");
        match flag.as_str() {
            "--key" => key = Some(value.parse().map_err(|_| bad("a public key"))?),
            "--target" => target = Some(value.parse().map_err(|_| bad("an IPv4 address:port"))?),
            "--sources" => options.sources = value.parse().map_err(|_| bad("a count"))?,
            "--source-base" => {
                options.source_base = value.parse().map_err(|_| bad("an IPv4 address"))?;
            }
            "--seconds" => options.seconds = value.parse().map_err(|_| bad("seconds"))?,
            "--count" => options.count = value.parse().map_err(|_| bad("a count"))?,
            "--seed" => options.seed = value.parse().map_err(|_| bad("a number"))?,
            "--mac2" => {
                options.random_mac2 = match value.as_str() {
                    "zero" => false,
                    "random" => true,
                    _ => return Err(bad("zero or random")),
                };
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    options.key = key.ok_or("--key is required")?;
    options.target = target.ok_or("--target is required")?;
    let first = u32::from(options.source_base);
    let last = first
        .checked_add(options.sources.saturating_sub(1))
        .ok_or("too many sources")?;
    for address in [
        options.target.ip().to_owned(),
        Ipv4Addr::from(first),
        Ipv4Addr::from(last),
    ] {
        if !in_benchmarking_range(address) {
            return Err(format!("{address} is outside 198.18.0.0/15"));
        }
    }
    if options.sources == 0 {
        return Err("--sources must be at least 1".to_owned());
    }
    Ok(options)
}

/// Whether `address` is in 198.18.0.0/15 (RFC 2544's benchmarking range).
fn in_benchmarking_range(address: Ipv4Addr) -> bool {
    u32::from(address) >> 17 == u32::from(Ipv4Addr::new(198, 18, 0, 0)) >> 17
}

fn flood(options: &Options) -> std::io::Result<()> {
    // SAFETY: socket has no memory preconditions.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut rng = ChaCha20Rng::seed_from_u64(options.seed);
    let mac1_key = blake2s::MacKey::new(&blake2s::hash(&[b"mac1----", options.key.as_bytes()]));
    let to = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(*options.target.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    let mut packet = [0u8; 28 + INITIATION_LEN];
    write_headers(&mut packet, options.target);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(options.seconds);
    let first_source = u32::from(options.source_base);
    let (mut sent, mut refused) = (0u64, 0u64);
    let mut n = 0u64;
    while n < options.count {
        // Reading the clock every 1024 datagrams costs nothing measurable.
        if n % 1024 == 0 && Instant::now() >= deadline {
            break;
        }
        let source = first_source + u32::try_from(n % u64::from(options.sources)).unwrap_or(0);
        packet[12..16].copy_from_slice(&source.to_be_bytes());
        let message = &mut packet[28..];
        message[..4].copy_from_slice(&[1, 0, 0, 0]);
        rng.fill_bytes(&mut message[4..MAC1_OFFSET]);
        let mac1 = mac1_key.mac(&[&message[..MAC1_OFFSET]]);
        message[MAC1_OFFSET..MAC2_OFFSET].copy_from_slice(&mac1);
        if options.random_mac2 {
            rng.fill_bytes(&mut message[MAC2_OFFSET..]);
        }
        // SAFETY: sendto reads `packet.len()` bytes of `packet` and one
        // `sockaddr_in` from `to`.
        let result = unsafe {
            libc::sendto(
                socket.as_raw_fd(),
                packet.as_ptr().cast(),
                packet.len(),
                0,
                (&raw const to).cast(),
                size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if result < 0 {
            refused += 1;
        } else {
            sent += 1;
        }
        n += 1;
    }
    let elapsed = started.elapsed();
    writeln!(
        std::io::stdout().lock(),
        "sent {sent} initiations ({refused} refused by the kernel) to {} from {} sources in \
         {:.2} s: {:.0} per second",
        options.target,
        options.sources,
        elapsed.as_secs_f64(),
        sent as f64 / elapsed.as_secs_f64().max(1e-9),
    )
}

/// The IPv4 and UDP headers of every datagram, to `target`; the source
/// address is filled in per datagram. The kernel fills in the header
/// checksum and total length; the UDP checksum is left out (zero), as IPv4
/// allows.
fn write_headers(packet: &mut [u8; 28 + INITIATION_LEN], target: SocketAddrV4) {
    let total = u16::try_from(packet.len()).unwrap_or(u16::MAX);
    let udp_len = total - 20;
    packet[..2].copy_from_slice(&[0x45, 0]);
    packet[2..4].copy_from_slice(&total.to_be_bytes());
    packet[4..12].copy_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
    packet[16..20].copy_from_slice(&target.ip().octets());
    packet[20..22].copy_from_slice(&SOURCE_PORT.to_be_bytes());
    packet[22..24].copy_from_slice(&target.port().to_be_bytes());
    packet[24..26].copy_from_slice(&udp_len.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> impl Iterator<Item = String> {
        text.split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn only_the_benchmarking_range_is_flooded() {
        let key = PublicKey::from_bytes([9; 32]);
        let parsed = parse(args(&format!("--key {key} --target 198.18.0.2:51820"))).unwrap();
        assert_eq!(parsed.target, "198.18.0.2:51820".parse().unwrap());
        assert_eq!(parsed.sources, 20_000);
        for refused in [
            format!("--key {key} --target 192.0.2.1:51820"),
            format!("--key {key} --target 198.18.0.2:51820 --source-base 198.19.255.0"),
            format!("--key {key} --target 198.18.0.2:51820 --sources 0"),
            format!("--key {key} --target 198.18.0.2:51820 --mac2 ones"),
            "--target 198.18.0.2:51820".to_owned(),
        ] {
            assert!(parse(args(&refused)).is_err(), "{refused}");
        }
    }
}
