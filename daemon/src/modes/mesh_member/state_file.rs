//! What gossip taught this host, kept in its state directory: one file,
//! replaced atomically (written beside, synced, renamed, the directory
//! synced), so a crash leaves the old state or the new, never a mix, and a
//! revocation once written is never lost.
//!
//! The file is written by a thread of its own ([`StateWriter`]), never on
//! the runtime thread that runs gossip and the data path's control: a
//! write and its two syncs can take tens of milliseconds on a loaded disk.
//! Writes are debounced — at most one a [`WRITE_INTERVAL`], of the store
//! as it is then — so a flood of changes costs one write a second, not
//! one per gossip message; the last state is written when the member
//! stops. A crash loses at most the last second of changes, which gossip
//! brings back from the peers (a revocation this host's operator handed it
//! is in its known directory too).
//!
//! The previous state is kept beside it (`mesh.state.prev`, a hard link
//! to the file each write replaces, made before the new file is renamed
//! in), so a state file that a disk, a copy or a hand damaged — cut short
//! at any byte, or altered — is not the end of the member: at start, a
//! state that does not verify is moved aside (`mesh.state.damaged`) and the
//! previous copy read instead, with a warning, if that one verifies. The
//! previous copy is one write older, at most a second of gossip behind,
//! the same loss as a crash, and gossip brings the rest back; refusing
//! instead would keep the member down, under systemd in a restart loop,
//! until an operator moved the file away and started over with an empty
//! state, which loses more. When neither verifies, the start is refused
//! with a message naming the files and the fix, before anything on the
//! system changed.
//!
//! The directory is this daemon's alone: it must not be writable by group
//! or others (whoever can write there can swap the file for a link to
//! elsewhere, or for a state without revocations), and a lock file held
//! while the member runs refuses a second daemon the same directory, whose
//! writes would interleave with ours. The file beside the state is opened
//! new each time and never through a symbolic link.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use sentrymesh_mesh::Store;

use crate::sys::process;

/// The least time between the starts of two writes of the state file.
pub(super) const WRITE_INTERVAL: Duration = Duration::from_secs(1);

/// The state file's name in the state directory.
const STATE_FILE: &str = "mesh.state";
/// The lock file's name in the state directory.
const LOCK_FILE: &str = "mesh.lock";
/// The previous state file's name in the state directory.
const PREVIOUS_FILE: &str = "mesh.state.prev";
/// The name the previous copy is linked under before it is renamed in.
const PREVIOUS_NEW_FILE: &str = "mesh.state.prev.new";
/// Where a state file that does not verify is moved, when the previous one
/// is read instead.
const DAMAGED_FILE: &str = "mesh.state.damaged";
/// The name a new state file is written under before it is renamed in.
const NEW_FILE: &str = "mesh.state.new";

/// The state directory's lock, held while the member runs.
#[derive(Debug)]
pub(super) struct StateLock {
    /// The locked file: the lock goes when it is closed.
    _file: File,
}

/// The state file of the directory `dir`.
pub(super) fn path(dir: &Path) -> PathBuf {
    dir.join(STATE_FILE)
}

/// Takes the state directory `dir` for this daemon and reads the store
/// kept there; an empty one when there is none yet. The directory is
/// created (mode 0700) if missing. A state that does not verify is
/// replaced by the previous copy when that one verifies (see the
/// [module docs](self)).
///
/// # Errors
///
/// When the directory cannot be made, is writable by others than its
/// owner, belongs to another user, cannot be written, or another daemon
/// holds it; or the state cannot be read, or neither it nor the previous
/// copy verifies: a damaged state is not replaced silently, since it may
/// hold revocations.
pub(super) fn load(dir: &Path) -> Result<(Store, StateLock)> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating the state directory {}", dir.display()))?;
    check_private(dir)?;
    let lock = lock(dir)?;
    check_writable(dir)?;
    let path = path(dir);
    let previous = dir.join(PREVIOUS_FILE);
    let damage = match read(&path)? {
        Some(bytes) => match Store::decode(&bytes) {
            Ok(store) => return Ok((store, lock)),
            Err(error) => Some(error),
        },
        None => None,
    };
    let Some(previous_bytes) = read(&previous)? else {
        return match damage {
            // The error's text only: its source repeats it.
            Some(error) => Err(anyhow::anyhow!(
                "the mesh state {} does not verify ({error}) and there is no previous copy {}; \
                 it may hold revocations, so it is not replaced: move it away to start over \
                 with an empty state (gossip brings the mesh back)",
                path.display(),
                previous.display()
            )),
            None => Ok((Store::new(), lock)),
        };
    };
    let store = Store::decode(&previous_bytes).map_err(|previous_error| {
        let found = match &damage {
            Some(error) => format!("{} does not verify ({error})", path.display()),
            None => format!("{} is missing", path.display()),
        };
        anyhow::anyhow!(
            "the mesh state {found}, and the previous copy {} does not verify either \
             ({previous_error}); they may hold revocations, so they are not replaced: move \
             both away to start over with an empty state (gossip brings the mesh back)",
            previous.display()
        )
    })?;
    match damage {
        Some(error) => {
            let damaged = dir.join(DAMAGED_FILE);
            fs::rename(&path, &damaged).with_context(|| {
                format!(
                    "moving the damaged {} aside to {}",
                    path.display(),
                    damaged.display()
                )
            })?;
            tracing::warn!(
                "the mesh state {} does not verify ({error}); it was moved to {} and the \
                 previous copy {} is read instead: what gossip brought since that copy comes \
                 back from the peers",
                path.display(),
                damaged.display(),
                previous.display()
            );
        }
        // A recovery moved a damaged state aside and the daemon stopped
        // before its first write, or a hand removed the file.
        None => tracing::warn!(
            "the mesh state {} is missing; the previous copy {} is read instead",
            path.display(),
            previous.display()
        ),
    }
    Ok((store, lock))
}

/// Reads the store kept in the state directory `dir` as [`load`] would,
/// changing nothing: no directory is made, no lock taken, no file moved or
/// written. For a reader beside the daemon that may hold the directory
/// (`sentrymesh check`, `sentrymesh export`): a write is replaced by a
/// rename, so a reader sees a whole file, old or new. A missing directory
/// holds an empty store, as `load` would make it. The directory's owner is
/// not checked, since the one reading (root) may not be the daemon's user.
///
/// # Errors
///
/// When the directory is writable by group or others, is no directory, or
/// neither the state nor its previous copy verifies where one is there.
pub(super) fn inspect(dir: &Path) -> Result<Store> {
    let metadata = match fs::metadata(dir) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Store::new()),
        Err(error) => {
            return Err(error)
                .with_context(|| format!("reading the state directory {}", dir.display()));
        }
    };
    if !metadata.is_dir() {
        anyhow::bail!("the state directory {} is not a directory", dir.display());
    }
    if metadata.mode() & 0o022 != 0 {
        anyhow::bail!(
            "the state directory {} is writable by group or others (mode {:o}); make it \
             private: chmod 700 {}",
            dir.display(),
            metadata.mode() & 0o7777,
            dir.display()
        );
    }
    let path = path(dir);
    let previous = dir.join(PREVIOUS_FILE);
    let damage = match read(&path)? {
        Some(bytes) => match Store::decode(&bytes) {
            Ok(store) => return Ok(store),
            Err(error) => Some(error),
        },
        None => None,
    };
    match (read(&previous)?, damage) {
        (None, None) => Ok(Store::new()),
        (None, Some(error)) => Err(anyhow::anyhow!(
            "the mesh state {} does not verify ({error}) and there is no previous copy {}",
            path.display(),
            previous.display()
        )),
        (Some(bytes), _) => Store::decode(&bytes).map_err(|error| {
            anyhow::anyhow!(
                "the mesh state {} cannot be read and its previous copy {} does not verify \
                 ({error})",
                path.display(),
                previous.display()
            )
        }),
    }
}

/// The bytes of the file at `path`, or `None` when there is none.
fn read(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
    }
}

/// Refuses a state directory this daemon cannot write in (a read-only
/// mount, or a mode that keeps out a daemon without root's override): the
/// member would run, and lose every change at the next restart. Tried by
/// making the file a write begins with, and removing it.
fn check_writable(dir: &Path) -> Result<()> {
    let probe = dir.join(NEW_FILE);
    let made = remove_if_there(&probe).and_then(|()| {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&probe)
    });
    if let Err(error) = made {
        return Err(error).with_context(|| {
            format!(
                "the state directory {} cannot be written; the mesh state would be lost at the \
                 next restart: give this daemon's user a writable state_dir",
                dir.display()
            )
        });
    }
    fs::remove_file(&probe).with_context(|| format!("removing {}", probe.display()))
}

/// Removes the file at `path`, if there is one.
fn remove_if_there(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// Refuses a state directory that others could write to.
fn check_private(dir: &Path) -> Result<()> {
    let metadata = fs::metadata(dir)
        .with_context(|| format!("reading the state directory {}", dir.display()))?;
    if !metadata.is_dir() {
        anyhow::bail!("the state directory {} is not a directory", dir.display());
    }
    let euid = process::effective_uid();
    if metadata.uid() != euid {
        anyhow::bail!(
            "the state directory {} belongs to user {}, not to this daemon's user {euid}",
            dir.display(),
            metadata.uid()
        );
    }
    if metadata.mode() & 0o022 != 0 {
        anyhow::bail!(
            "the state directory {} is writable by group or others (mode {:o}), who could \
             replace the mesh state; make it private: chmod 700 {}",
            dir.display(),
            metadata.mode() & 0o7777,
            dir.display()
        );
    }
    Ok(())
}

/// Takes the lock of the state directory `dir`, which one daemon holds at
/// a time.
fn lock(dir: &Path) -> Result<StateLock> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .with_context(|| {
            format!(
                "opening the lock {}: the state directory must be writable by this daemon",
                path.display()
            )
        })?;
    if let Err(error) = process::try_lock_exclusive(&file) {
        if error.kind() == io::ErrorKind::WouldBlock {
            anyhow::bail!(
                "the state directory {} is in use by another sentrymesh daemon; give each \
                 interface a state_dir of its own",
                dir.display()
            );
        }
        return Err(error).with_context(|| format!("locking {}", path.display()));
    }
    Ok(StateLock { _file: file })
}

/// Replaces the state kept in `dir` with `state`, a store's encoding, and
/// keeps the state it replaces as the previous copy.
///
/// The previous copy is a hard link to the old file, renamed over the
/// older copy before the new file is renamed over the old: at every step
/// the state file and the previous copy are whole ones, each the old or
/// the new.
///
/// # Errors
///
/// When a write, sync, link or rename fails; the old state then stays.
fn save(dir: &Path, state: &[u8]) -> Result<()> {
    let path = path(dir);
    let temporary = dir.join(NEW_FILE);
    let previous = dir.join(PREVIOUS_FILE);
    let previous_new = dir.join(PREVIOUS_NEW_FILE);
    let write = || -> io::Result<()> {
        // A file a crash left there is ours (the directory is private and
        // locked); whatever it is, a link included, it goes, and the new
        // one is made afresh, never opened through a link.
        remove_if_there(&temporary)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temporary)?;
        file.write_all(state)?;
        file.sync_all()?;
        // The previous copy is replaced in one rename too; with no state
        // to keep (the first write, or after a recovery), the copy stays.
        remove_if_there(&previous_new)?;
        match fs::hard_link(&path, &previous_new) {
            Ok(()) => fs::rename(&previous_new, &previous)?,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        fs::rename(&temporary, &path)?;
        File::open(dir)?.sync_all()
    };
    write().with_context(|| format!("writing {}", path.display()))
}

/// A state file to write: the store's encoding at a generation.
struct Job {
    generation: u64,
    dir: PathBuf,
    state: Vec<u8>,
}

/// Writes the store to the state directory from a thread of its own, at
/// most once a [`WRITE_INTERVAL`]; see the [module docs](self).
pub(super) struct StateWriter {
    jobs: Option<mpsc::Sender<Job>>,
    done: mpsc::Receiver<(u64, Result<()>)>,
    thread: Option<thread::JoinHandle<()>>,
    /// The generation last handed to the thread, and when.
    sent: Option<(u64, Instant)>,
}

impl StateWriter {
    /// Starts the writer thread, which holds the state directory's `lock`
    /// until it ends.
    ///
    /// # Errors
    ///
    /// When the thread cannot be started.
    pub(super) fn spawn(lock: StateLock) -> Result<Self> {
        let (jobs, queued) = mpsc::channel::<Job>();
        let (report, done) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("mesh-state".into())
            .spawn(move || {
                let _lock = lock;
                while let Ok(mut job) = queued.recv() {
                    // Only the newest state is worth writing.
                    while let Ok(newer) = queued.try_recv() {
                        job = newer;
                    }
                    let result = save(&job.dir, &job.state);
                    if report.send((job.generation, result)).is_err() {
                        return;
                    }
                }
            })
            .context("starting the thread that writes the mesh state")?;
        Ok(Self {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
            sent: None,
        })
    }

    /// Logs the writes done since the last call, and hands the thread the
    /// store, to write to `dir`, if it changed since the last write and
    /// that began a [`WRITE_INTERVAL`] ago. Returns when a write is due
    /// next, if a change waits for the interval.
    pub(super) fn poll(&mut self, dir: &Path, store: &Store, now: Instant) -> Option<Instant> {
        while let Ok((generation, result)) = self.done.try_recv() {
            if let Err(error) = result {
                tracing::error!("keeping the mesh state: {error:#}");
                // Written again after the interval.
                if let Some((sent, _)) = &mut self.sent {
                    if *sent == generation {
                        *sent = u64::MAX;
                    }
                }
            }
        }
        let generation = store.generation();
        let next = match self.sent {
            Some((sent, _)) if sent == generation => return None,
            Some((_, at)) => at + WRITE_INTERVAL,
            None => now,
        };
        if next > now {
            return Some(next);
        }
        self.send(dir, store, now);
        None
    }

    /// Writes the store to `dir` if it changed since the last write, and
    /// waits for the thread to finish: for when the member stops.
    pub(super) fn close(&mut self, dir: &Path, store: &Store) {
        if self.sent.is_none_or(|(sent, _)| sent != store.generation()) {
            self.send(dir, store, Instant::now());
        }
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        while let Ok((_, result)) = self.done.try_recv() {
            if let Err(error) = result {
                tracing::error!("keeping the mesh state: {error:#}");
            }
        }
    }

    /// Hands the thread the store's encoding. It is made here, on the
    /// member's thread, at most once a [`WRITE_INTERVAL`]: one pass copying
    /// the objects' bytes, some 4 ms in a release build for 32,768 objects
    /// (4.7 MB, both global caps full). Handing the thread a clone to
    /// encode there would cost the member's thread more: the clone of that
    /// store took 22 ms. The write and its syncs are the thread's.
    fn send(&mut self, dir: &Path, store: &Store, now: Instant) {
        let job = Job {
            generation: store.generation(),
            dir: dir.to_owned(),
            state: store.encode(),
        };
        let Some(jobs) = &self.jobs else {
            return;
        };
        if jobs.send(job).is_err() {
            tracing::error!("keeping the mesh state: its writer thread stopped");
        }
        self.sent = Some((store.generation(), now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_state_is_empty_and_a_saved_one_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let (store, lock) = load(&state).unwrap();
        assert_eq!(store.objects().count(), 0);
        save(&state, &store.encode()).unwrap();
        drop(lock);
        assert_eq!(load(&state).unwrap().0.encode(), store.encode());
        assert!(!state.join("mesh.state.new").exists());
    }

    #[test]
    fn a_reader_beside_the_daemon_sees_its_state_or_the_previous_copy() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        assert_eq!(inspect(&state).unwrap().objects().count(), 0);
        let (_, lock) = load(&state).unwrap();
        let (older, newer) = (store_of(1), store_of(2));
        two_writes(&state, &older, &newer);
        // Read while the daemon holds the directory.
        assert_eq!(inspect(&state).unwrap().encode(), newer.encode());
        fs::write(path(&state), b"damaged").unwrap();
        assert_eq!(inspect(&state).unwrap().encode(), older.encode());
        fs::remove_file(state.join(PREVIOUS_FILE)).unwrap();
        let message = format!("{:#}", inspect(&state).unwrap_err());
        assert!(message.contains("does not verify"), "{message}");
        drop(lock);
    }

    #[test]
    fn the_writer_writes_on_its_thread_and_at_close() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new();
        let (_, lock) = load(dir.path()).unwrap();
        let mut writer = StateWriter::spawn(lock).unwrap();
        let now = Instant::now();
        assert_eq!(writer.poll(dir.path(), &store, now), None);
        // Nothing changed: nothing more to write, now or later.
        assert_eq!(writer.poll(dir.path(), &store, now + WRITE_INTERVAL), None);
        writer.close(dir.path(), &store);
        assert_eq!(load(dir.path()).unwrap().0, store);
    }

    /// A vouch by operator `by` for another, at `at`: a change to a store.
    fn vouch(by: u8, at: u64) -> sentrymesh_mesh::SignedVouch {
        let voucher = sentrymesh_mesh::OperatorSecret::from_seed([by | 1; 32]);
        let subject = sentrymesh_mesh::OperatorSecret::from_seed([0x41; 32]);
        sentrymesh_mesh::Vouch {
            voucher: voucher.operator_id(),
            subject: subject.operator_id(),
            overlay: "198.19.9.0/24".parse().unwrap(),
            issued_at: sentrymesh_types::UnixTime(at),
        }
        .sign(&voucher)
        .unwrap()
    }

    #[test]
    fn changes_within_the_interval_wait_for_it_and_the_last_is_written_at_close() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::new();
        let (_, lock) = load(dir.path()).unwrap();
        let mut writer = StateWriter::spawn(lock).unwrap();
        let start = Instant::now();
        assert_eq!(writer.poll(dir.path(), &store, start), None);
        // A change half an interval later waits until the interval is over.
        store
            .insert_vouch(vouch(3, 1_000), sentrymesh_types::UnixTime(2_000))
            .unwrap();
        let half = start + WRITE_INTERVAL / 2;
        assert_eq!(
            writer.poll(dir.path(), &store, half),
            Some(start + WRITE_INTERVAL)
        );
        // Then it is written, and the next change waits again.
        assert_eq!(
            writer.poll(dir.path(), &store, start + WRITE_INTERVAL),
            None
        );
        store
            .insert_vouch(vouch(5, 1_000), sentrymesh_types::UnixTime(2_000))
            .unwrap();
        let next = start + WRITE_INTERVAL + WRITE_INTERVAL;
        assert_eq!(
            writer.poll(dir.path(), &store, start + WRITE_INTERVAL),
            Some(next)
        );
        // Stopping writes it at once.
        writer.close(dir.path(), &store);
        assert_eq!(load(dir.path()).unwrap().0, store);
    }

    #[test]
    fn a_damaged_state_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(path(dir.path()), b"not a state").unwrap();
        let error = format!("{:#}", load(dir.path()).unwrap_err());
        assert!(error.contains("does not verify"), "{error}");
        assert_eq!(fs::read(path(dir.path())).unwrap(), b"not a state");
    }

    /// A store of `count` vouches, as a real state file holds them.
    fn store_of(count: u8) -> Store {
        let mut store = Store::new();
        for by in 0..count {
            store
                .insert_vouch(vouch(by * 2 + 3, 1_000), sentrymesh_types::UnixTime(2_000))
                .unwrap();
        }
        store
    }

    /// Every offset of a file of `len` bytes up to 4 KiB, and a dense
    /// sample beyond: each of the first and last 512, and every 7th.
    fn offsets(len: usize) -> impl Iterator<Item = usize> {
        (0..len).filter(move |&at| len <= 4096 || at < 512 || at + 512 >= len || at % 7 == 0)
    }

    /// The state `dir` holds after two writes: `older` as the previous
    /// copy, `newer` as the state.
    fn two_writes(dir: &Path, older: &Store, newer: &Store) {
        save(dir, &older.encode()).unwrap();
        save(dir, &newer.encode()).unwrap();
        assert_eq!(fs::read(dir.join(PREVIOUS_FILE)).unwrap(), older.encode());
        assert_eq!(fs::read(path(dir)).unwrap(), newer.encode());
    }

    #[test]
    fn inspect_reads_the_state_as_load_would_and_changes_nothing() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        assert_eq!(inspect(&state).unwrap().objects().count(), 0);
        assert!(!state.exists(), "inspect made the state directory");
        DirBuilder::new().mode(0o700).create(&state).unwrap();
        let (older, newer) = (store_of(2), store_of(3));
        two_writes(&state, &older, &newer);
        assert_eq!(inspect(&state).unwrap().encode(), newer.encode());
        // A damaged state: the previous copy is read, and nothing is moved.
        fs::write(path(&state), b"damaged").unwrap();
        assert_eq!(inspect(&state).unwrap().encode(), older.encode());
        assert_eq!(fs::read(path(&state)).unwrap(), b"damaged");
        assert!(!state.join(DAMAGED_FILE).exists() && !state.join(LOCK_FILE).exists());
        fs::set_permissions(&state, fs::Permissions::from_mode(0o770)).unwrap();
        let error = inspect(&state).unwrap_err().to_string();
        assert!(error.contains("writable by group or others"), "{error}");
    }

    #[test]
    fn each_write_keeps_the_state_it_replaces_as_the_previous_copy() {
        let dir = tempfile::tempdir().unwrap();
        let (older, newer) = (store_of(2), store_of(3));
        save(dir.path(), &older.encode()).unwrap();
        assert!(!dir.path().join(PREVIOUS_FILE).exists());
        two_writes(dir.path(), &older, &newer);
        save(dir.path(), &store_of(4).encode()).unwrap();
        assert_eq!(
            fs::read(dir.path().join(PREVIOUS_FILE)).unwrap(),
            newer.encode()
        );
        assert!(!dir.path().join(NEW_FILE).exists());
    }

    #[test]
    fn a_state_cut_or_altered_at_any_byte_is_recovered_from_the_previous_copy() {
        let dir = tempfile::tempdir().unwrap();
        let (older, newer) = (store_of(2), store_of(3));
        two_writes(dir.path(), &older, &newer);
        let whole = newer.encode();
        let damaged = dir.path().join(DAMAGED_FILE);
        let cuts = offsets(whole.len()).map(|at| whole[..at].to_vec());
        let flips = offsets(whole.len()).map(|at| {
            let mut altered = whole.clone();
            altered[at] ^= 0x01;
            altered
        });
        for bad in cuts.chain(flips) {
            fs::write(path(dir.path()), &bad).unwrap();
            let (store, lock) = load(dir.path()).unwrap();
            assert_eq!(store, older, "recovered the previous copy");
            assert_eq!(
                fs::read(&damaged).unwrap(),
                bad,
                "the damaged file kept aside"
            );
            assert!(!path(dir.path()).exists());
            assert_eq!(
                fs::read(dir.path().join(PREVIOUS_FILE)).unwrap(),
                older.encode()
            );
            drop(lock);
        }
        // The next write puts a state back, and the previous copy stays
        // the one that verified.
        let (store, lock) = load(dir.path()).unwrap();
        let mut writer = StateWriter::spawn(lock).unwrap();
        writer.close(dir.path(), &store);
        assert_eq!(fs::read(path(dir.path())).unwrap(), older.encode());
        assert_eq!(
            fs::read(dir.path().join(PREVIOUS_FILE)).unwrap(),
            older.encode()
        );
    }

    #[test]
    fn a_state_cut_at_any_byte_without_a_good_previous_copy_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let (older, newer) = (store_of(2), store_of(3));
        let whole = newer.encode();
        let previous = older.encode();
        let state_path = path(dir.path());
        let previous_path = dir.path().join(PREVIOUS_FILE);
        for at in offsets(whole.len()) {
            let cut = &whole[..at];
            // No previous copy: refused, naming the file and the fix.
            fs::write(&state_path, cut).unwrap();
            let _ = fs::remove_file(&previous_path);
            let error = format!("{:#}", load(dir.path()).unwrap_err());
            assert!(error.contains(&state_path.display().to_string()), "{error}");
            assert!(error.contains("move it away to start over"), "{error}");
            assert_eq!(fs::read(&state_path).unwrap(), cut);
            // A previous copy cut too: refused, naming both.
            let previous_cut = &previous[..at.min(previous.len() - 1)];
            fs::write(&previous_path, previous_cut).unwrap();
            let error = format!("{:#}", load(dir.path()).unwrap_err());
            assert!(
                error.contains(&previous_path.display().to_string()),
                "{error}"
            );
            assert!(error.contains("move both away"), "{error}");
            assert_eq!(fs::read(&state_path).unwrap(), cut);
            assert_eq!(fs::read(&previous_path).unwrap(), previous_cut);
            assert!(!dir.path().join(DAMAGED_FILE).exists());
            // Each refusal let go of the lock: nothing of the start stays.
        }
        assert!(!dir.path().join(NEW_FILE).exists());
    }

    #[test]
    fn a_missing_state_with_a_previous_copy_reads_the_copy() {
        // A crash between the steps of a write can leave no state file
        // only after a recovery moved a damaged one aside.
        let dir = tempfile::tempdir().unwrap();
        two_writes(dir.path(), &store_of(1), &store_of(2));
        fs::remove_file(path(dir.path())).unwrap();
        assert_eq!(load(dir.path()).unwrap().0, store_of(1));
    }

    #[test]
    fn a_second_daemon_is_refused_the_directory_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let (_, held) = load(dir.path()).unwrap();
        let error = format!("{:#}", load(dir.path()).unwrap_err());
        assert!(
            error.contains("in use by another sentrymesh daemon"),
            "{error}"
        );
        drop(held);
        assert!(load(dir.path()).is_ok());
    }

    #[test]
    fn a_directory_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().unwrap();
        for mode in [0o777, 0o770, 0o702] {
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(mode)).unwrap();
            let error = format!("{:#}", load(dir.path()).unwrap_err());
            assert!(
                error.contains("writable by group or others"),
                "{mode:o}: {error}"
            );
        }
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o750)).unwrap();
        assert!(load(dir.path()).is_ok());
    }

    #[test]
    fn a_link_planted_beside_the_state_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let target = elsewhere.path().join("victim");
        fs::write(&target, b"untouched").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("mesh.state.new")).unwrap();
        let (store, _lock) = load(dir.path()).unwrap();
        save(dir.path(), &store.encode()).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"untouched");
        assert_eq!(fs::read(path(dir.path())).unwrap(), store.encode());
        assert!(!fs::symlink_metadata(path(dir.path())).unwrap().is_symlink());
    }
}
