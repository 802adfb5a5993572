//! The data path at steady state: many packets of one peer sealed into one
//! contiguous buffer (as UDP segmentation offload wants them), opened in place
//! on the other side, and not one heap allocation for any of it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use sentrymesh_tunnel::sim::{Pair, Side, ipv4_packet};
use sentrymesh_tunnel::{DATA_HEADER_LEN, Encapsulated, Received};

thread_local! {
    /// Heap allocations made by this thread so far.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// The system allocator, counting allocations per thread so tests running in
/// parallel do not see each other's.
struct CountingAllocator;

fn count_allocation() {
    // During thread teardown the counter may be gone; such allocations are
    // not the ones under test.
    let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees are ours; counting touches only a
// const-initialized thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through this allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_allocation();
        // SAFETY: `ptr` came from `System` through this allocator, and the
        // caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn a_batch_sealed_into_one_buffer_opens_without_allocating() {
    const BATCH: usize = 64;
    const LEN: usize = 1400;
    let mut pair = Pair::established();
    let now = pair.now;
    let packets: Vec<Vec<u8>> = (0..BATCH).map(|i| ipv4_packet(LEN, i as u8)).collect();
    let stride = pair.a.engine.encapsulated_len(LEN);
    let mut batch = vec![0u8; BATCH * stride];
    // Warm up: the first packets after a handshake confirm the session.
    pair.send(Side::A, &packets[0]);
    pair.send(Side::B, &packets[0]);
    pair.drive();

    let before = allocations();
    for round in 0..10 {
        // The daemon reads each packet from the TUN device straight into its
        // segment, after room for the header.
        for (segment, packet) in batch.chunks_exact_mut(stride).zip(&packets) {
            segment[DATA_HEADER_LEN..DATA_HEADER_LEN + LEN].copy_from_slice(packet);
            let sealed = pair
                .a
                .engine
                .encapsulate_in_place(now, pair.a.peer, segment, LEN)
                .expect("sealed");
            assert_eq!(
                sealed,
                Encapsulated::Sealed { len: stride },
                "round {round}"
            );
        }
        for (segment, packet) in batch.chunks_exact_mut(stride).zip(&packets) {
            match pair.b.engine.handle_datagram(now, pair.a.addr, segment) {
                Ok(Received::Packet {
                    peer,
                    packet: opened,
                }) => {
                    assert_eq!(peer, pair.b.peer);
                    assert_eq!(opened, &packet[..]);
                }
                other => panic!("round {round}: {other:?}"),
            }
        }
    }
    assert_eq!(
        allocations() - before,
        0,
        "heap allocations on the data path"
    );
}
