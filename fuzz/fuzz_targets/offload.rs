//! The TUN offload paths: a virtio header and a packet, segmented into
//! slots as the send path does and coalesced back as the receive path
//! does; `sentrymesh::fuzzing::offload` checks the invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sentrymesh::fuzzing::offload(data));
