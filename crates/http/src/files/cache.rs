//! The shard's open files (nginx calls its own `open_file_cache`): a file served once stays
//! open with its metadata for [`VALID`], so that the next request for the same path is
//! answered on the shard, with no offload round trip and no `open`/`fstat`.
//!
//! Only the pool touches the file system by path (resolving, `open`, `fstat` may all wait on
//! the disk): a miss, or an entry older than [`VALID`], goes to the pool as before, and its
//! answer refreshes the entry. So a file replaced or deleted on disk is noticed within
//! [`VALID`] of the change; until then the old file is served whole and consistent (its own
//! length, ETag and Last-Modified), as a download already under way would be anyway.
//!
//! Bounded: at most [`OPEN_FILES`] entries (fds) per shard and listener; a new entry evicts
//! the one refreshed longest ago, and the shard's once-a-second clock tick closes entries
//! older than [`VALID`]. An evicted entry's file stays open only as long as a download still
//! sends from it.

use std::fs::File;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::FilesRoot;

/// Entries kept per shard and listener: each is one open fd.
pub(crate) const OPEN_FILES: usize = 64;

/// How long an entry answers without looking at the disk again: the longest a replaced or
/// deleted file is still served from its old open handle.
pub(crate) const VALID: Duration = Duration::from_secs(1);

/// The largest file whose residency is checked whole and then trusted for [`VALID`]: 16 Ki
/// pages, a check of tens of microseconds on the shard at most.
pub(crate) const TRUSTED_MAX: u64 = 64 * 1024 * 1024;

/// An open file and what its responses need to know of it.
#[derive(Debug, Clone)]
pub(crate) struct Opened {
    pub file: Arc<File>,
    pub len: u64,
    pub modified: SystemTime,
    pub content_type: &'static [u8],
}

/// An entry for the cache, made on the pool by a request that opened the file.
#[derive(Debug)]
pub(crate) struct OpenFile {
    root: Arc<FilesRoot>,
    /// The raw request path below the route prefix: the key, with the root.
    rest: Vec<u8>,
    opened: Opened,
    /// When the pool looked at the disk for it.
    at: Instant,
    /// When the whole file was last found in the page cache (see [`OpenFile::trust`]).
    resident_at: Option<Instant>,
}

impl OpenFile {
    pub fn new(root: Arc<FilesRoot>, rest: Vec<u8>, opened: Opened, at: Instant) -> Self {
        Self {
            root,
            rest,
            opened,
            at,
            resident_at: None,
        }
    }

    pub fn opened(&self) -> &Opened {
        &self.opened
    }

    /// Until when the file's segments may go by `sendfile` with no residency check: for
    /// [`VALID`] after the whole file was found in the page cache (checked now if it was not
    /// within the last [`VALID`]), so that downloads of a hot file skip the per-segment
    /// check. The risk taken: a page evicted within that second blocks the shard on its disk
    /// read. Files over [`TRUSTED_MAX`] are never trusted (their whole-file check would cost
    /// the shard more than it saves).
    pub fn trust(&mut self, now: Instant) -> Option<Instant> {
        if self.opened.len > TRUSTED_MAX {
            return None;
        }
        let fresh = |t: Instant| now.saturating_duration_since(t) < VALID;
        if !self.resident_at.is_some_and(fresh) {
            let file = &self.opened.file;
            let whole = coreloop_reactor::page_cache_resident(file, 0, self.opened.len);
            self.resident_at = (whole == Some(true)).then_some(now);
        }
        self.resident_at.map(|t| t + VALID)
    }

    fn is(&self, root: &Arc<FilesRoot>, rest: &[u8]) -> bool {
        Arc::ptr_eq(&self.root, root) && self.rest == rest
    }
}

/// One shard's open files; never crosses threads.
#[derive(Debug, Default)]
pub(crate) struct OpenFiles {
    entries: Vec<OpenFile>,
}

impl OpenFiles {
    /// The file `rest` names under `root` if an entry younger than [`VALID`] has it. An older
    /// entry is dropped (closing its fd unless a download holds it): the caller asks the pool,
    /// whose answer makes the next entry.
    pub fn lookup(
        &mut self,
        root: &Arc<FilesRoot>,
        rest: &[u8],
        now: Instant,
    ) -> Option<&mut OpenFile> {
        let at = self.entries.iter().position(|e| e.is(root, rest))?;
        if now.saturating_duration_since(self.entries[at].at) >= VALID {
            self.entries.swap_remove(at);
            return None;
        }
        Some(&mut self.entries[at])
    }

    /// Drops every entry older than [`VALID`]: called once a second, so that an idle shard
    /// holds no fd (nor a deleted file's disk space) for longer than that and a tick.
    pub fn sweep(&mut self, now: Instant) {
        self.entries
            .retain(|e| now.saturating_duration_since(e.at) < VALID);
    }

    /// Keeps `entry`, replacing one for the same path, else evicting the oldest when full.
    pub fn insert(&mut self, entry: OpenFile) {
        if let Some(at) = self
            .entries
            .iter()
            .position(|e| e.is(&entry.root, &entry.rest))
        {
            self.entries[at] = entry;
            return;
        }
        if self.entries.len() >= OPEN_FILES {
            let oldest = (0..self.entries.len()).min_by_key(|&i| self.entries[i].at);
            if let Some(oldest) = oldest {
                self.entries.swap_remove(oldest);
            }
        }
        self.entries.push(entry);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::FilesSpec;

    fn root() -> Arc<FilesRoot> {
        let spec = FilesSpec {
            root: std::env::temp_dir(),
            index: None,
            listing: false,
        };
        Arc::new(FilesRoot::new(spec).unwrap())
    }

    fn entry(root: &Arc<FilesRoot>, rest: &str, len: u64, at: Instant) -> OpenFile {
        let opened = Opened {
            file: Arc::new(File::open("/dev/null").unwrap()),
            len,
            modified: SystemTime::UNIX_EPOCH,
            content_type: b"text/plain",
        };
        OpenFile::new(root.clone(), rest.as_bytes().to_vec(), opened, at)
    }

    #[test]
    fn a_fresh_entry_answers_for_its_own_root_and_path_only() {
        let (one, two) = (root(), root());
        let now = Instant::now();
        let mut cache = OpenFiles::default();
        cache.insert(entry(&one, "a.txt", 1, now));
        assert_eq!(
            cache.lookup(&one, b"a.txt", now).map(|o| o.opened().len),
            Some(1)
        );
        assert!(cache.lookup(&one, b"b.txt", now).is_none());
        assert!(
            cache.lookup(&two, b"a.txt", now).is_none(),
            "another root's file"
        );
    }

    #[test]
    fn an_entry_as_old_as_the_validity_is_dropped() {
        let root = root();
        let then = Instant::now();
        let mut cache = OpenFiles::default();
        cache.insert(entry(&root, "a", 1, then));
        let just_before = then + VALID - Duration::from_millis(1);
        assert!(cache.lookup(&root, b"a", just_before).is_some());
        assert!(cache.lookup(&root, b"a", then + VALID).is_none());
        assert_eq!(cache.len(), 0, "the stale entry (and its fd) is kept");
        cache.insert(entry(&root, "a", 1, then));
        cache.insert(entry(&root, "b", 1, then + VALID));
        cache.sweep(then + VALID);
        assert_eq!(cache.len(), 1, "only the stale entry goes");
        assert!(cache.lookup(&root, b"b", then + VALID).is_some());
    }

    #[test]
    fn a_resident_file_is_trusted_for_the_validity_and_a_large_one_never() {
        let path = std::env::temp_dir().join(format!("coreloop-trust-{}", std::process::id()));
        std::fs::write(&path, vec![3u8; 64 * 1024]).unwrap();
        let opened = |len| Opened {
            file: Arc::new(File::open(&path).unwrap()),
            len,
            modified: SystemTime::UNIX_EPOCH,
            content_type: b"text/plain",
        };
        let now = Instant::now();
        let mut small = OpenFile::new(root(), b"s".to_vec(), opened(64 * 1024), now);
        // Just written, so resident (unless the kernel lacks cachestat: then never trusted).
        if coreloop_reactor::page_cache_resident(&small.opened.file, 0, 1) == Some(true) {
            assert_eq!(small.trust(now), Some(now + VALID));
            let later = now + VALID / 2;
            assert_eq!(
                small.trust(later),
                Some(now + VALID),
                "checked again too soon"
            );
            assert_eq!(small.trust(now + VALID), Some(now + 2 * VALID));
        } else {
            assert_eq!(small.trust(now), None);
        }
        let mut large = OpenFile::new(root(), b"l".to_vec(), opened(TRUSTED_MAX + 1), now);
        assert_eq!(large.trust(now), None);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_refresh_replaces_and_a_full_cache_evicts_the_oldest() {
        let root = root();
        let start = Instant::now();
        let mut cache = OpenFiles::default();
        cache.insert(entry(&root, "a", 1, start));
        cache.insert(entry(&root, "a", 2, start + Duration::from_millis(1)));
        assert_eq!(cache.len(), 1);
        let late = start + Duration::from_millis(2);
        assert_eq!(
            cache.lookup(&root, b"a", late).map(|o| o.opened().len),
            Some(2)
        );
        for i in 0..OPEN_FILES {
            let at = start + Duration::from_millis(10 + i as u64);
            cache.insert(entry(&root, &format!("f{i}"), 0, at));
        }
        assert_eq!(cache.len(), OPEN_FILES, "the bound");
        assert!(
            cache.lookup(&root, b"a", late).is_none(),
            "the oldest stays"
        );
        assert!(cache.lookup(&root, b"f0", late).is_some());
    }
}
