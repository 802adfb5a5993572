//! The UAPI socket's request decoder and parser: a byte stream cut into
//! pieces the input chooses; `sentrymesh::fuzzing::uapi_request` checks
//! that the cut never changes the requests and answers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sentrymesh::fuzzing::uapi_request(data));
