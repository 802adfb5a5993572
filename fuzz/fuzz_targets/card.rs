//! Signed host cards: `SignedCard::decode` on bytes that are raw input or
//! a genuine card mutated (`sentrymesh_fuzz::shape`), and
//! `SignedCard::from_text` on text.
//!
//! Input: a form byte (bit 0: text, else binary), then the input of
//! `shape` (binary) or the text.
//!
//! What must hold: only the genuine card is accepted (its operator's
//! signature and its proof of possession cover every byte); an accepted
//! card keeps its bytes, is valid, and its text form reads back as the
//! same card.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sentrymesh_fuzz::mesh::card;
use sentrymesh_fuzz::shape;
use sentrymesh_mesh::SignedCard;
use sentrymesh_mesh::testing::{NOW, operator};

fn genuine() -> &'static SignedCard {
    static CARD: OnceLock<SignedCard> = OnceLock::new();
    CARD.get_or_init(|| card(&operator(1)))
}

fuzz_target!(|data: &[u8]| {
    let Some((&form, input)) = data.split_first() else {
        return;
    };
    let genuine = genuine();
    let decoded = if form & 1 == 0 {
        let bytes = shape(input, &[genuine.as_bytes()]);
        let decoded = SignedCard::decode(&bytes);
        if let Ok(card) = &decoded {
            assert_eq!(
                card.as_bytes(),
                &bytes[..],
                "a card does not keep its bytes"
            );
        }
        decoded
    } else {
        let Ok(text) = std::str::from_utf8(input) else {
            return;
        };
        SignedCard::from_text(text)
    };
    let Ok(card) = decoded else {
        return;
    };
    assert_eq!(&card, genuine, "accepted a card that is not genuine");
    assert!(card.card().validate().is_ok());
    assert!(card.check_valid_at(NOW).is_ok());
    assert_eq!(SignedCard::from_text(&card.to_text()).ok(), Some(card));
});
