//! The sliding replay window of received counters.
//!
//! This is the Linux kernel's `counter_validate`
//! (`drivers/net/wireguard/receive.c`), the bitmap of RFC 6479: a ring of
//! [`WORDS`] 64-bit words, 8192 bits in all, of which one word is redundant so
//! that sliding the window forward clears whole words and never shifts bits.
//!
//! ```text
//!   ring slot:  0      1      2            127
//!             ┌──────┬──────┬──────┬─ … ─┬──────┐
//!             │ 64 b │ 64 b │ 64 b │     │ 64 b │   word of n = (n / 64) mod 128
//!             └──────┴──────┴──────┴─ … ─┴──────┘
//!                    ▲ word of the greatest counter; the words after it in
//!                      the ring are the oldest and are cleared when it moves
//! ```
//!
//! A counter is accepted when it is below [`REJECT_AFTER_MESSAGES`], was not
//! accepted before, and is at most [`WINDOW_SIZE`] behind the greatest counter
//! accepted so far. Those three rules are exact: the word granularity of the
//! ring never widens or narrows the window, because the redundant word keeps
//! every counter within `WINDOW_SIZE` of the greatest in a word that has not
//! been recycled (the `model_agrees` property test checks this).
//!
//! Like the kernel, the window stores every counter plus one, so that the
//! all-zero state means "nothing received" and counter 0 needs no special case.

/// No data message with a counter at or above this is sent or accepted:
/// 2^64 − 2^13 − 1, the value of the whitepaper and wireguard-go.
///
/// The Linux kernel uses `U64_MAX - COUNTER_WINDOW_SIZE - 1` (2^64 − 8130),
/// 63 more; nobody sends 2^64 messages under one key, so the difference is
/// only visible to tests that jump to the limit.
pub(crate) const REJECT_AFTER_MESSAGES: u64 = u64::MAX - (1 << 13);

/// Bits in a word of the ring.
const WORD_BITS: u64 = u64::BITS as u64;
/// Bits in the ring: `COUNTER_BITS_TOTAL`.
const BITS_TOTAL: u64 = 8192;
/// Words in the ring.
const WORDS: usize = (BITS_TOTAL / WORD_BITS) as usize;
/// How far behind the greatest accepted counter a counter may be and still be
/// accepted: `COUNTER_WINDOW_SIZE`, the ring minus one redundant word.
const WINDOW_SIZE: u64 = BITS_TOTAL - WORD_BITS;

/// The ring slot of absolute word `word` (shifted counter `n` is in word
/// `n / 64`).
fn slot(word: u64) -> usize {
    // The remainder is below `WORDS`, so the cast is lossless.
    (word % WORDS as u64) as usize
}

/// The bit of (shifted) counter `shifted` within its word.
fn bit(shifted: u64) -> u64 {
    1 << (shifted % WORD_BITS)
}

/// Which data counters of one session were received: the greatest, and a
/// bitmap of the [`WINDOW_SIZE`] before it.
///
/// Allocation-free and constant time up to the words a jump forward clears.
/// Holds no secrets; its `Debug` shows only the greatest counter.
#[derive(Clone)]
pub(crate) struct ReplayWindow {
    /// The greatest accepted counter plus one; 0 before anything was accepted
    /// (the kernel's `counter->counter`). At most `REJECT_AFTER_MESSAGES`.
    next: u64,
    /// The ring of words; bit `n % 64` of slot `(n / 64) % 128` records
    /// shifted counter `n` (the kernel's `backtrack`).
    bitmap: [u64; WORDS],
}

impl ReplayWindow {
    /// An empty window: no counter was received yet.
    pub(crate) fn new() -> Self {
        Self {
            next: 0,
            bitmap: [0; WORDS],
        }
    }

    /// Whether [`ReplayWindow::accept`] would accept `counter` now, without
    /// recording it: the cheap check to run before the AEAD open.
    ///
    /// False when the counter is surely a replay, too old, or at or over
    /// [`REJECT_AFTER_MESSAGES`].
    pub(crate) fn check(&self, counter: u64) -> bool {
        let Some(shifted) = self.shift(counter) else {
            return false;
        };
        if shifted > self.next {
            // A new greatest counter: its bit is in a word `accept` clears, or
            // above the greatest in the current word, where no bit is set.
            return true;
        }
        self.bitmap[slot(shifted / WORD_BITS)] & bit(shifted) == 0
    }

    /// Records `counter` once its message authenticated; false, changing
    /// nothing, if it was seen before, is too old, or is at or over
    /// [`REJECT_AFTER_MESSAGES`].
    pub(crate) fn accept(&mut self, counter: u64) -> bool {
        let Some(shifted) = self.shift(counter) else {
            return false;
        };
        let word = shifted / WORD_BITS;
        if shifted > self.next {
            let current_word = self.next / WORD_BITS;
            // Clear the words between the old greatest and the new one, at
            // most the whole ring; `word >= current_word` as `shifted > next`.
            let skipped = (word - current_word).min(WORDS as u64);
            for i in 1..=skipped {
                self.bitmap[slot(current_word + i)] = 0;
            }
            self.next = shifted;
        }
        let cell = &mut self.bitmap[slot(word)];
        let fresh = *cell & bit(shifted) == 0;
        *cell |= bit(shifted);
        fresh
    }

    /// The kernel's checks before the bitmap: `counter` plus one if it is
    /// below the limit and not behind the window, `None` otherwise.
    fn shift(&self, counter: u64) -> Option<u64> {
        // The kernel also refuses when `next >= REJECT_AFTER_MESSAGES + 1`; as
        // `next` is some accepted counter plus one, that cannot happen once
        // every counter is checked against the limit, so it is kept only as a
        // guard that costs one comparison.
        if self.next > REJECT_AFTER_MESSAGES || counter >= REJECT_AFTER_MESSAGES {
            return None;
        }
        // No overflow: `counter < REJECT_AFTER_MESSAGES < u64::MAX`.
        let shifted = counter + 1;
        // The kernel's `COUNTER_WINDOW_SIZE + their_counter < counter`,
        // written so that it cannot overflow.
        if self.next.saturating_sub(shifted) > WINDOW_SIZE {
            return None;
        }
        Some(shifted)
    }
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for ReplayWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayWindow")
            .field("greatest", &self.next.checked_sub(1))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    /// The kernel's `T_LIM`.
    const T_LIM: u64 = WINDOW_SIZE + 1;

    /// The harness of the kernel's self-test: `T_INIT` and `T(n, v)`, with the
    /// running test number in every failure message. Every `T` also checks
    /// that [`ReplayWindow::check`] predicts the answer and changes nothing.
    struct SelfTest {
        window: ReplayWindow,
        test_num: u32,
    }

    impl SelfTest {
        fn new() -> Self {
            Self {
                window: ReplayWindow::new(),
                test_num: 0,
            }
        }

        /// `T_INIT`: a fresh window; the numbering runs on, as in the kernel.
        fn init(&mut self) {
            self.window = ReplayWindow::new();
        }

        /// `T(n, v)`.
        fn t(&mut self, n: u64, v: bool) {
            self.test_num += 1;
            let before = self.window.clone();
            assert_eq!(
                self.window.check(n),
                v,
                "nonce counter self-test {} (check of {n}): FAIL",
                self.test_num
            );
            assert_eq!(self.window.next, before.next, "check mutated");
            assert_eq!(self.window.bitmap, before.bitmap, "check mutated");
            assert_eq!(
                self.window.accept(n),
                v,
                "nonce counter self-test {} (accept of {n}): FAIL",
                self.test_num
            );
        }
    }

    #[test]
    fn constants_match_the_kernel_and_whitepaper() {
        assert_eq!(WINDOW_SIZE, 8128);
        assert_eq!(WORDS, 128);
        assert_eq!(
            u128::from(REJECT_AFTER_MESSAGES),
            (1u128 << 64) - (1 << 13) - 1
        );
    }

    #[test]
    fn kernel_selftest_numbered_cases() {
        let mut s = SelfTest::new();
        s.init();
        /*  1 */
        s.t(0, true);
        /*  2 */
        s.t(1, true);
        /*  3 */
        s.t(1, false);
        /*  4 */
        s.t(9, true);
        /*  5 */
        s.t(8, true);
        /*  6 */
        s.t(7, true);
        /*  7 */
        s.t(7, false);
        /*  8 */
        s.t(T_LIM, true);
        /*  9 */
        s.t(T_LIM - 1, true);
        /* 10 */
        s.t(T_LIM - 1, false);
        /* 11 */
        s.t(T_LIM - 2, true);
        /* 12 */
        s.t(2, true);
        /* 13 */
        s.t(2, false);
        /* 14 */
        s.t(T_LIM + 16, true);
        /* 15 */
        s.t(3, false);
        /* 16 */
        s.t(T_LIM + 16, false);
        /* 17 */
        s.t(T_LIM * 4, true);
        /* 18 */
        s.t(T_LIM * 4 - (T_LIM - 1), true);
        /* 19 */
        s.t(10, false);
        /* 20 */
        s.t(T_LIM * 4 - T_LIM, false);
        /* 21 */
        s.t(T_LIM * 4 - (T_LIM + 1), false);
        /* 22 */
        s.t(T_LIM * 4 - (T_LIM - 2), true);
        /* 23 */
        s.t(T_LIM * 4 + 1 - T_LIM, false);
        /* 24 */
        s.t(0, false);
        /* 25 */
        s.t(REJECT_AFTER_MESSAGES, false);
        /* 26 */
        s.t(REJECT_AFTER_MESSAGES - 1, true);
        /* 27 */
        s.t(REJECT_AFTER_MESSAGES, false);
        /* 28 */
        s.t(REJECT_AFTER_MESSAGES - 1, false);
        /* 29 */
        s.t(REJECT_AFTER_MESSAGES - 2, true);
        /* 30 */
        s.t(REJECT_AFTER_MESSAGES + 1, false);
        /* 31 */
        s.t(REJECT_AFTER_MESSAGES + 2, false);
        /* 32 */
        s.t(REJECT_AFTER_MESSAGES - 2, false);
        /* 33 */
        s.t(REJECT_AFTER_MESSAGES - 3, true);
        /* 34 */
        s.t(0, false);
        assert_eq!(s.test_num, 34);
    }

    #[test]
    fn kernel_selftest_ascending_fill_then_zero() {
        let mut s = SelfTest::new();
        s.init();
        for i in 1..=WINDOW_SIZE {
            s.t(i, true);
        }
        s.t(0, true);
        s.t(0, false);
    }

    #[test]
    fn kernel_selftest_ascending_fill_from_two_then_one_and_zero() {
        let mut s = SelfTest::new();
        s.init();
        for i in 2..=WINDOW_SIZE + 1 {
            s.t(i, true);
        }
        s.t(1, true);
        s.t(0, false);
    }

    #[test]
    fn kernel_selftest_descending_fill_to_zero() {
        let mut s = SelfTest::new();
        s.init();
        // for (i = COUNTER_WINDOW_SIZE + 1; i-- > 0;)
        for i in (0..=WINDOW_SIZE).rev() {
            s.t(i, true);
        }
    }

    #[test]
    fn kernel_selftest_descending_fill_from_window_plus_one_then_zero() {
        let mut s = SelfTest::new();
        s.init();
        // for (i = COUNTER_WINDOW_SIZE + 2; i-- > 1;)
        for i in (1..=WINDOW_SIZE + 1).rev() {
            s.t(i, true);
        }
        s.t(0, false);
    }

    #[test]
    fn kernel_selftest_descending_fill_then_slide_then_zero() {
        let mut s = SelfTest::new();
        s.init();
        // for (i = COUNTER_WINDOW_SIZE + 1; i-- > 1;)
        for i in (1..=WINDOW_SIZE).rev() {
            s.t(i, true);
        }
        s.t(WINDOW_SIZE + 1, true);
        s.t(0, false);
    }

    #[test]
    fn kernel_selftest_descending_fill_then_zero_then_slide() {
        let mut s = SelfTest::new();
        s.init();
        // for (i = COUNTER_WINDOW_SIZE + 1; i-- > 1;)
        for i in (1..=WINDOW_SIZE).rev() {
            s.t(i, true);
        }
        s.t(0, true);
        s.t(WINDOW_SIZE + 1, true);
    }

    #[test]
    fn check_agrees_with_accept_and_does_not_mutate() {
        let mut window = ReplayWindow::new();
        let sequence = [
            5,
            5,
            3,
            0,
            WINDOW_SIZE + 5,
            4,
            3,
            WINDOW_SIZE + 5,
            70_000,
            70_000 - WINDOW_SIZE,
            70_000 - WINDOW_SIZE - 1,
            REJECT_AFTER_MESSAGES,
            u64::MAX,
            69_999,
        ];
        for counter in sequence {
            let before = window.clone();
            let predicted = window.check(counter);
            assert_eq!(window.check(counter), predicted, "check is repeatable");
            assert_eq!(window.next, before.next);
            assert_eq!(window.bitmap, before.bitmap);
            assert_eq!(window.accept(counter), predicted, "counter {counter}");
        }
    }

    #[test]
    fn jumps_clear_the_whole_ring_and_extremes_never_panic() {
        let mut window = ReplayWindow::default();
        for counter in 0..200 {
            assert!(window.accept(counter));
        }
        // A jump of far more than the ring clears every word.
        assert!(window.accept(1 << 40));
        assert!(window.bitmap.iter().map(|w| w.count_ones()).sum::<u32>() == 1);
        for counter in 0..200 {
            assert!(!window.check(counter));
            assert!(!window.accept(counter));
        }
        for counter in [u64::MAX, u64::MAX - 1, REJECT_AFTER_MESSAGES] {
            assert!(!window.check(counter));
            assert!(!window.accept(counter));
        }
        assert!(window.accept(REJECT_AFTER_MESSAGES - 1));
        assert!(window.accept(REJECT_AFTER_MESSAGES - 1 - WINDOW_SIZE));
        assert!(!window.accept(REJECT_AFTER_MESSAGES - 2 - WINDOW_SIZE));
        assert!(!window.accept(0));
        assert_eq!(
            format!("{window:?}"),
            format!(
                "ReplayWindow {{ greatest: Some({}), .. }}",
                REJECT_AFTER_MESSAGES - 1
            )
        );
    }

    /// The rules of the window, stated directly: below the limit, not seen
    /// before, and at most `WINDOW_SIZE` behind the greatest accepted.
    #[derive(Default)]
    struct Model {
        seen: BTreeSet<u64>,
        greatest: Option<u64>,
    }

    impl Model {
        fn accept(&mut self, counter: u64) -> bool {
            let ok = counter < REJECT_AFTER_MESSAGES
                && !self.seen.contains(&counter)
                // No overflow: `counter < REJECT_AFTER_MESSAGES`.
                && self.greatest.is_none_or(|g| counter + WINDOW_SIZE >= g);
            if ok {
                self.seen.insert(counter);
                self.greatest = self.greatest.max(Some(counter));
            }
            ok
        }
    }

    /// A counter to try, absolute or relative to the greatest accepted.
    #[derive(Debug, Clone)]
    enum Step {
        Absolute(u64),
        Ahead(u64),
        Behind(u64),
    }

    impl Step {
        fn resolve(&self, greatest: Option<u64>) -> u64 {
            let base = greatest.unwrap_or(0);
            match *self {
                Step::Absolute(n) => n,
                Step::Ahead(d) => base.wrapping_add(d),
                Step::Behind(d) => base.wrapping_sub(d),
            }
        }
    }

    /// Distances that hit reorders, duplicates, word boundaries and the
    /// edges of the window and of the ring.
    fn distance() -> impl Strategy<Value = u64> {
        prop_oneof![
            4 => 0u64..70,
            4 => (WINDOW_SIZE - 70)..(BITS_TOTAL + 70),
            2 => (0u64..=130).prop_map(|w| w * WORD_BITS),
            2 => (0u64..=130).prop_map(|w| w * WORD_BITS + WORD_BITS - 1),
            1 => any::<u64>(),
        ]
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            2 => (0u64..300).prop_map(Step::Absolute),
            1 => (REJECT_AFTER_MESSAGES - 20_000..=u64::MAX).prop_map(Step::Absolute),
            1 => any::<u64>().prop_map(Step::Absolute),
            3 => distance().prop_map(Step::Ahead),
            4 => distance().prop_map(Step::Behind),
        ]
    }

    proptest! {
        #[test]
        fn model_agrees(steps in proptest::collection::vec(step(), 1..300)) {
            let mut window = ReplayWindow::new();
            let mut model = Model::default();
            for step in &steps {
                let counter = step.resolve(model.greatest);
                let predicted = window.check(counter);
                let accepted = window.accept(counter);
                let expected = model.accept(counter);
                prop_assert_eq!(predicted, expected, "check of {}", counter);
                prop_assert_eq!(accepted, expected, "accept of {}", counter);
            }
        }
    }
}
