//! Sealed bundles: `SealedBundle::decode`, `bundle::open` and
//! `bundle::open_text` on bytes that are raw input or a genuine bundle
//! mutated (`sentrymesh_fuzz::shape`), or on text. The genuine bundle is
//! from operator 1 to operators 2 and 3.
//!
//! Input: a form byte (bit 0: text, else binary), then the input of
//! `shape` (binary) or the text.
//!
//! What must hold: a decoded bundle keeps its bytes and its text form
//! reads back the same; only the genuine bundle opens, for a recipient
//! (operator 2) and never for anyone else (operator 4), and it holds the
//! card that was sealed.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sentrymesh_fuzz::mesh::{bundle, card};
use sentrymesh_fuzz::shape;
use sentrymesh_mesh::SealedBundle;
use sentrymesh_mesh::bundle::{open, open_text};
use sentrymesh_mesh::testing::{NOW, operator};

fn genuine() -> &'static [u8] {
    static BUNDLE: OnceLock<Vec<u8>> = OnceLock::new();
    BUNDLE.get_or_init(bundle)
}

fuzz_target!(|data: &[u8]| {
    let Some((&form, input)) = data.split_first() else {
        return;
    };
    let genuine = genuine();
    let (recipient, stranger) = (operator(2), operator(4));
    let (bytes, opened) = if form & 1 == 0 {
        let bytes = shape(input, &[genuine]);
        if let Ok(sealed) = SealedBundle::decode(&bytes) {
            assert_eq!(
                sealed.as_bytes(),
                &bytes[..],
                "a bundle does not keep its bytes"
            );
            let again = SealedBundle::from_text(&sealed.to_text()).expect("its own text");
            assert_eq!(again.as_bytes(), sealed.as_bytes());
        }
        assert!(
            open(&stranger, &bytes, NOW).is_err(),
            "opened for a stranger"
        );
        (bytes.clone(), open(&recipient, &bytes, NOW))
    } else {
        let Ok(text) = std::str::from_utf8(input) else {
            return;
        };
        assert!(
            open_text(&stranger, text, NOW).is_err(),
            "opened for a stranger"
        );
        let bytes = SealedBundle::from_text(text)
            .map(|sealed| sealed.as_bytes().to_vec())
            .unwrap_or_default();
        (bytes, open_text(&recipient, text, NOW))
    };
    if let Ok(opened) = opened {
        assert_eq!(bytes, genuine, "opened a bundle that is not genuine");
        assert_eq!(opened.sender, operator(1).operator_id());
        assert_eq!(opened.cards, vec![card(&operator(1))]);
    }
});
