//! Tests of batched UDP I/O, on loopback only.
use super::*;
use std::time::{Duration, Instant};

/// A non-blocking socket on the loopback address of the family.
fn loopback(v6: bool) -> UdpSocket {
    let socket = if v6 {
        UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)).unwrap()
    } else {
        UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap()
    };
    socket.set_nonblocking(true).unwrap();
    socket
}

/// `count` datagrams of `size` bytes (the last `last` bytes), each filled
/// with a byte of its own, concatenated.
fn segments(count: usize, size: usize, last: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
    let datagrams: Vec<Vec<u8>> = (0..count)
        .map(|i| {
            let len = if i + 1 == count { last } else { size };
            (0..len).map(|j| (i * 7 + j) as u8).collect()
        })
        .collect();
    (datagrams.concat(), datagrams)
}

/// Sends `buf` to `to` as one run of `size`-byte datagrams; returns how
/// many datagrams went, after checking that no error was met.
fn send_segments(
    io: &BatchIo,
    socket: &UdpSocket,
    to: SocketAddr,
    buf: &[u8],
    size: usize,
) -> usize {
    let run = Run {
        destination: to,
        start: 0,
        len: buf.len(),
        segment_size: size,
    };
    let report = io.send_runs(socket, buf, &[run]);
    assert!(report.error.is_none(), "{:?}", report.error);
    assert_eq!(report.failed, 0);
    report.sent
}

/// Reads datagrams one by one with `recv_from` until `count` arrived.
fn recv_plain(socket: &UdpSocket, count: usize) -> Vec<(Vec<u8>, SocketAddr)> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65_536];
    while out.len() < count {
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => out.push((buf[..n].to_vec(), from)),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < deadline,
                    "only {} of {count} arrived",
                    out.len()
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(error) => panic!("{error}"),
        }
    }
    out
}

/// Reads with `recv_batch` until `count` datagrams arrived, splitting
/// messages by their segment size; returns the datagrams, their sources
/// and the number of messages.
fn recv_batched(socket: &UdpSocket, count: usize) -> (Vec<Vec<u8>>, Vec<SocketAddr>, usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut bufs = vec![vec![0u8; 65_536]; 8];
    let mut meta = [RecvMeta::default(); 8];
    let (mut datagrams, mut sources, mut messages) = (Vec::new(), Vec::new(), 0);
    while datagrams.len() < count {
        match recv_batch(socket, &mut bufs, &mut meta) {
            Ok(n) => {
                assert!(n > 0);
                for (buf, meta) in bufs.iter().zip(&meta[..n]) {
                    assert!(!meta.truncated);
                    messages += 1;
                    for datagram in meta.datagrams(buf) {
                        datagrams.push(datagram.to_vec());
                        sources.push(meta.source);
                    }
                }
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < deadline,
                    "only {} of {count} arrived",
                    datagrams.len()
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(error) => panic!("{error}"),
        }
    }
    (datagrams, sources, messages)
}

fn gso_send_is_received_as_datagrams(v6: bool, mode: GsoMode) {
    let (sender, receiver) = (loopback(v6), loopback(v6));
    let io = BatchIo::new(&sender, mode);
    let (buf, expected) = segments(10, 1200, 345);
    let sent = send_segments(&io, &sender, receiver.local_addr().unwrap(), &buf, 1200);
    assert_eq!(sent, expected.len());
    let received = recv_plain(&receiver, expected.len());
    let datagrams: Vec<Vec<u8>> = received.iter().map(|(d, _)| d.clone()).collect();
    assert_eq!(datagrams, expected);
    assert!(
        received
            .iter()
            .all(|(_, from)| *from == sender.local_addr().unwrap())
    );
}

#[test]
fn capabilities_are_probed() {
    let socket = loopback(false);
    let probed = BatchIo::new(&socket, GsoMode::Probe).capabilities();
    assert_eq!(
        probed.max_segments,
        if probed.gso { MAX_GSO_SEGMENTS } else { 1 }
    );
    let disabled = BatchIo::new(&socket, GsoMode::Disabled).capabilities();
    assert!(!disabled.gso);
    assert_eq!(disabled.max_segments, 1);
    assert_eq!(disabled.gro, probed.gro);
}

#[test]
fn gso_send_ipv4() {
    gso_send_is_received_as_datagrams(false, GsoMode::Probe);
}

#[test]
fn gso_send_ipv6() {
    gso_send_is_received_as_datagrams(true, GsoMode::Probe);
}

#[test]
fn fallback_send_ipv4() {
    gso_send_is_received_as_datagrams(false, GsoMode::Disabled);
}

#[test]
fn fallback_send_ipv6() {
    gso_send_is_received_as_datagrams(true, GsoMode::Disabled);
}

#[test]
fn a_gso_refusal_falls_back_for_good() {
    let (sender, receiver) = (loopback(false), loopback(false));
    let io = BatchIo::new(&sender, GsoMode::Probe);
    // Without UDP checksums the kernel refuses GSO sends with EINVAL,
    // as it does with EIO for a device that cannot checksum.
    crate::sys::sockopt::set_int(&sender, libc::SOL_SOCKET, libc::SO_NO_CHECK, 1).unwrap();
    let (buf, expected) = segments(5, 700, 70);
    let to = receiver.local_addr().unwrap();
    assert_eq!(send_segments(&io, &sender, to, &buf, 700), expected.len());
    assert!(!io.capabilities().gso);
    assert_eq!(io.capabilities().max_segments, 1);
    let datagrams: Vec<Vec<u8>> = recv_plain(&receiver, 5)
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    assert_eq!(datagrams, expected);
}

#[test]
fn more_than_64_segments_are_split_across_sends() {
    let (sender, receiver) = (loopback(false), loopback(false));
    let io = BatchIo::new(&sender, GsoMode::Probe);
    // 150 segments: three GSO sends of at most 64; 150 * 100 bytes.
    let (buf, expected) = segments(150, 100, 100);
    let sent = send_segments(&io, &sender, receiver.local_addr().unwrap(), &buf, 100);
    assert_eq!(sent, expected.len());
    let datagrams: Vec<Vec<u8>> = recv_plain(&receiver, 150)
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    assert_eq!(datagrams, expected);
}

#[test]
fn large_segments_respect_the_payload_limit() {
    let (sender, receiver) = (loopback(true), loopback(true));
    let io = BatchIo::new(&sender, GsoMode::Probe);
    // 20 segments of 8000 bytes: 160 000 bytes (under the default
    // receive buffer), at most 8 a send.
    let (buf, expected) = segments(20, 8000, 8000);
    let sent = send_segments(&io, &sender, receiver.local_addr().unwrap(), &buf, 8000);
    assert_eq!(sent, expected.len());
    let datagrams: Vec<Vec<u8>> = recv_plain(&receiver, 20)
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    assert_eq!(datagrams, expected);
}

#[test]
fn gro_receive_splits_back_into_the_sent_datagrams() {
    for v6 in [false, true] {
        for mode in [GsoMode::Probe, GsoMode::Disabled] {
            let (sender, receiver) = (loopback(v6), loopback(v6));
            let gro = enable_gro(&receiver);
            assert_eq!(
                gro,
                BatchIo::new(&receiver, GsoMode::Probe).capabilities().gro
            );
            let io = BatchIo::new(&sender, mode);
            let (buf, expected) = segments(20, 1000, 10);
            let sent = send_segments(&io, &sender, receiver.local_addr().unwrap(), &buf, 1000);
            assert_eq!(sent, expected.len());
            let (datagrams, sources, messages) = recv_batched(&receiver, expected.len());
            assert_eq!(datagrams, expected, "v6 {v6}, {mode:?}");
            assert!(sources.iter().all(|s| *s == sender.local_addr().unwrap()));
            assert!(messages <= expected.len());
            // A GSO send stays one unit over loopback, and a GRO socket
            // takes it whole.
            if gro && io.capabilities().gso {
                assert!(messages < expected.len(), "v6 {v6}: not coalesced");
            }
        }
    }
}

#[test]
fn recv_batch_returns_several_messages_with_their_sources() {
    let receiver = loopback(false);
    let senders = [loopback(false), loopback(false), loopback(false)];
    let to = receiver.local_addr().unwrap();
    for (i, sender) in senders.iter().enumerate() {
        sender.send_to(&[i as u8; 3], to).unwrap();
    }
    // Wait until all three are queued, so that one call sees them.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut bufs = vec![[0u8; 100]; 8];
    let mut meta = [RecvMeta::default(); 8];
    let mut got = Vec::new();
    while got.len() < senders.len() {
        match recv_batch(&receiver, &mut bufs, &mut meta) {
            Ok(n) => {
                for (buf, meta) in bufs.iter().zip(&meta[..n]) {
                    assert_eq!(meta.len, 3);
                    assert_eq!(meta.segment_size, 3);
                    got.push((buf[..meta.len].to_vec(), meta.source));
                }
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline);
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(error) => panic!("{error}"),
        }
    }
    let expected: Vec<(Vec<u8>, SocketAddr)> = senders
        .iter()
        .enumerate()
        .map(|(i, s)| (vec![i as u8; 3], s.local_addr().unwrap()))
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn several_pending_datagrams_arrive_in_one_call() {
    let (sender, receiver) = (loopback(true), loopback(true));
    let to = receiver.local_addr().unwrap();
    for i in 0..5u8 {
        sender.send_to(&[i; 10], to).unwrap();
    }
    // Give loopback delivery time to queue all five.
    std::thread::sleep(Duration::from_millis(50));
    let mut bufs = vec![vec![0u8; 100]; 8];
    let mut meta = [RecvMeta::default(); 8];
    let n = recv_batch(&receiver, &mut bufs, &mut meta).unwrap();
    assert_eq!(n, 5);
    for (i, (buf, meta)) in bufs.iter().zip(&meta[..n]).enumerate() {
        assert_eq!(meta.source, sender.local_addr().unwrap());
        assert_eq!(&buf[..meta.len], &[i as u8; 10]);
    }
}

#[test]
fn nothing_waiting_is_would_block() {
    let socket = loopback(false);
    let mut bufs = [[0u8; 16]];
    let mut meta = [RecvMeta::default()];
    let error = recv_batch(&socket, &mut bufs, &mut meta).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
}

#[test]
fn ipv4_destination_mapped_on_a_dual_stack_socket() {
    let sender = UdpSocket::bind((Ipv6Addr::UNSPECIFIED, 0)).unwrap();
    sender.set_nonblocking(true).unwrap();
    let receiver = loopback(false);
    let io = BatchIo::new(&sender, GsoMode::Probe);
    let to = crate::sys::udp::destination_for(true, receiver.local_addr().unwrap());
    let (buf, expected) = segments(3, 500, 500);
    assert_eq!(send_segments(&io, &sender, to, &buf, 500), expected.len());
    let received = recv_plain(&receiver, 3);
    let datagrams: Vec<Vec<u8>> = received.iter().map(|(d, _)| d.clone()).collect();
    assert_eq!(datagrams, expected);
    // And back: the source arrives IPv4-mapped, the caller canonicalises.
    let back = SocketAddr::new(
        Ipv4Addr::LOCALHOST.into(),
        sender.local_addr().unwrap().port(),
    );
    receiver.send_to(b"back", back).unwrap();
    let (datagrams, sources, _) = recv_batched(&sender, 1);
    assert_eq!(datagrams, [b"back".to_vec()]);
    assert!(matches!(sources[0], SocketAddr::V6(_)));
    assert_eq!(
        crate::sys::udp::canonical(sources[0]),
        receiver.local_addr().unwrap()
    );
}

#[test]
fn sockaddr_conversion_round_trips() {
    let addrs: [SocketAddr; 4] = [
        "192.0.2.7:51820".parse().unwrap(),
        "[2001:db8::1]:443".parse().unwrap(),
        "[::ffff:192.0.2.7]:1".parse().unwrap(),
        SocketAddr::V6(SocketAddrV6::new(
            "fe80::1".parse().unwrap(),
            9,
            0x000a_bcde,
            3,
        )),
    ];
    for addr in addrs {
        let (storage, len) = sockaddr_from(addr);
        assert_eq!(socket_addr_from(&storage, len), Some(addr));
    }
    // Truncated or foreign addresses are refused.
    let (storage, len) = sockaddr_from(addrs[1]);
    assert_eq!(socket_addr_from(&storage, len - 1), None);
    // SAFETY: all-zero bytes are a valid `sockaddr_storage` (AF_UNSPEC).
    let unspec: libc::sockaddr_storage = unsafe { mem::zeroed() };
    assert_eq!(socket_addr_from(&unspec, 128), None);
}

#[test]
fn malformed_runs_fail_alone_and_empty_sends_nothing() {
    let (sender, receiver) = (loopback(false), loopback(false));
    let io = BatchIo::new(&sender, GsoMode::Probe);
    let to = receiver.local_addr().unwrap();
    let run = |start, len, segment_size| Run {
        destination: to,
        start,
        len,
        segment_size,
    };
    let buf = [7u8; 10];
    // A zero segment size and a run past the buffer fail; the good run goes.
    let report = io.send_runs(&sender, &buf, &[run(0, 1, 0), run(5, 6, 6), run(0, 4, 4)]);
    assert_eq!((report.sent, report.failed), (1, 2));
    assert_eq!(recv_plain(&receiver, 1)[0].0, [7u8; 4]);
    let report = io.send_runs(&sender, &buf, &[]);
    assert_eq!((report.sent, report.failed), (0, 0));
}

#[test]
fn runs_to_many_destinations_leave_in_order_and_a_refused_one_fails_alone() {
    for mode in [GsoMode::Probe, GsoMode::Disabled] {
        let sender = loopback(false);
        let receivers = [loopback(false), loopback(false), loopback(false)];
        let io = BatchIo::new(&sender, mode);
        // Runs of 3, 1 and 2 datagrams, then one to an address the kernel
        // refuses to send to (the limited broadcast, without SO_BROADCAST),
        // then two more to the first receiver: one batch.
        let (first, first_expected) = segments(3, 300, 100);
        let (third, third_expected) = segments(2, 500, 500);
        let buf = [
            first.clone(),
            vec![9; 148],
            third.clone(),
            vec![1; 10],
            vec![2; 20],
        ]
        .concat();
        let at = |index: usize| receivers[index].local_addr().unwrap();
        let mut start = 0;
        let mut run = |destination, len, segment_size| {
            let run = Run {
                destination,
                start,
                len,
                segment_size,
            };
            start += len;
            run
        };
        let runs = [
            run(at(0), first.len(), 300),
            run(at(1), 148, 148),
            run(at(2), third.len(), 500),
            run("255.255.255.255:9".parse().unwrap(), 10, 10),
            run(at(0), 20, 20),
        ];
        let report = io.send_runs(&sender, &buf, &runs);
        assert_eq!((report.sent, report.failed), (7, 1), "{mode:?}");
        assert!(report.error.is_some());
        let datagrams = |index: usize, count| -> Vec<Vec<u8>> {
            recv_plain(&receivers[index], count)
                .into_iter()
                .map(|(d, _)| d)
                .collect()
        };
        assert_eq!(
            datagrams(0, 4),
            [first_expected, vec![vec![2; 20]]].concat()
        );
        assert_eq!(datagrams(1, 1), [vec![9; 148]]);
        assert_eq!(datagrams(2, 2), third_expected);
    }
}

#[test]
fn datagrams_split_by_segment_size() {
    let meta = RecvMeta {
        len: 7,
        segment_size: 3,
        ..RecvMeta::default()
    };
    let buf = [1, 2, 3, 4, 5, 6, 7, 0, 0];
    let parts: Vec<&[u8]> = meta.datagrams(&buf).collect();
    assert_eq!(parts, [&[1, 2, 3][..], &[4, 5, 6], &[7]]);
}
