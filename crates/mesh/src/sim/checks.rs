//! The simulation's hook into object checks: a [`Checker`] installed on a
//! thread is asked to decode and verify every signed object
//! ([`Object::decode`], which gossip and state files use) instead of the
//! check itself. A simulation of many hosts installs one that checks each
//! distinct encoding once and remembers the outcome — identical bytes
//! verify identically on every host — while charging each host what the
//! check cost. Compiled only with the `testing` feature; without a checker
//! installed, [`Object::decode`] checks as it always does.
//!
//! ```text
//!   Object::decode(kind, bytes)
//!      ├─ no checker on this thread → check(kind, bytes)
//!      └─ checker                   → checker.check(kind, bytes, check)
//! ```

use std::cell::RefCell;
use std::sync::Arc;

use crate::object::{Object, ObjectKind, ParseObjectError};

/// The check itself: decodes `bytes` as `kind` and verifies its
/// signatures, as [`Object::decode`] does without a checker.
pub type Check = fn(ObjectKind, &[u8]) -> Result<Object, ParseObjectError>;

/// What decodes and verifies objects on a thread while installed: one
/// checker may be installed on several threads at once (a [`Net`](super::Net)
/// with workers installs the caller's on each).
pub trait Checker: Send + Sync {
    /// The outcome of `check(kind, bytes)`: a checker that gives anything
    /// else breaks the simulation it is installed in.
    ///
    /// # Errors
    ///
    /// [`ParseObjectError`], as `check` returns it.
    fn check(
        &self,
        kind: ObjectKind,
        bytes: &[u8],
        check: Check,
    ) -> Result<Object, ParseObjectError>;
}

thread_local! {
    static CHECKER: RefCell<Option<Arc<dyn Checker>>> = const { RefCell::new(None) };
}

/// Installs `checker` on this thread until the guard returned drops, which
/// puts back the one installed before.
pub fn install(checker: Arc<dyn Checker>) -> Installed {
    let previous = CHECKER.with(|slot| slot.borrow_mut().replace(checker));
    Installed { previous }
}

/// A [`Checker`] installed on this thread; dropping it uninstalls it.
#[must_use = "the checker is uninstalled when this drops"]
pub struct Installed {
    previous: Option<Arc<dyn Checker>>,
}

impl Drop for Installed {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CHECKER.with(|slot| *slot.borrow_mut() = previous);
    }
}

impl std::fmt::Debug for Installed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Installed")
    }
}

/// The checker installed on this thread, if any.
pub fn installed() -> Option<Arc<dyn Checker>> {
    CHECKER.with(|slot| slot.borrow().clone())
}

/// `check(kind, bytes)`, through this thread's checker when one is
/// installed.
pub(crate) fn checked(
    kind: ObjectKind,
    bytes: &[u8],
    check: Check,
) -> Result<Object, ParseObjectError> {
    // The slot is not borrowed during the check: a checker may decode.
    match installed() {
        Some(checker) => checker.check(kind, bytes, check),
        None => check(kind, bytes),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::role::Role;
    use crate::testing::{SignCard, card, operator};

    /// Counts what it is asked, and checks it.
    #[derive(Default)]
    struct Counting(AtomicU32);

    impl Checker for Counting {
        fn check(
            &self,
            kind: ObjectKind,
            bytes: &[u8],
            check: Check,
        ) -> Result<Object, ParseObjectError> {
            self.0.fetch_add(1, Ordering::Relaxed);
            check(kind, bytes)
        }
    }

    #[test]
    fn an_installed_checker_is_asked_until_its_guard_drops() {
        let op = operator(1);
        let signed = card(&op, "sentry-1", Role::Sentry).sign(&op).unwrap();
        let (outer, inner) = (Arc::new(Counting::default()), Arc::new(Counting::default()));
        let decode = || Object::decode(ObjectKind::Card, signed.as_bytes()).unwrap();
        assert_eq!(decode(), Object::from(signed.clone()));
        {
            let _outer = install(outer.clone());
            decode();
            {
                let _inner = install(inner.clone());
                assert!(installed().is_some());
                decode();
                assert!(Object::decode(ObjectKind::Vouch, signed.as_bytes()).is_err());
            }
            decode();
        }
        decode();
        assert!(installed().is_none());
        let counts = (
            outer.0.load(Ordering::Relaxed),
            inner.0.load(Ordering::Relaxed),
        );
        assert_eq!(counts, (2, 2));
    }
}
