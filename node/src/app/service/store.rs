//! The watch-history store of one node: a grow-only set of watches kept in memory
//! for reads and in redb on disk, so a node (or the whole cluster) restarted from the
//! same folder still holds every watch it acknowledged.
//!
//! Writes go through one writer thread that groups whatever is queued into a single
//! transaction and commits it with redb's immediate durability (an fsync) before any
//! of the writers hears "stored": a replica's acknowledgement means the watch is on
//! disk. Merging keeps the earliest time of a (user, video) pair, so applying the
//! same watch twice, or in any order, gives the same set.
//!
//! The store also keeps one XOR digest per anti-entropy bucket, updated as watches
//! land, so comparing two replicas costs 64 numbers.

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use shared::service::{Watch, BUCKETS};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, RwLock};
use tokio::sync::{mpsc, oneshot};

const WATCHES: TableDefinition<(u32, u32), u64> = TableDefinition::new("watches");

/// Most writes one transaction groups.
const MAX_GROUP: usize = 512;

/// The store failed; the node cannot acknowledge writes.
#[derive(Debug, Clone, thiserror::Error)]
#[error("watch store: {0}")]
pub struct StoreError(String);

fn store_error(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

#[derive(Default)]
struct Memory {
    by_user: HashMap<u32, BTreeMap<u32, u64>>,
    digests: Vec<u64>,
    count: usize,
}

impl Memory {
    /// Applies one watch; true if it changed the set.
    fn apply(&mut self, w: Watch) -> bool {
        let videos = self.by_user.entry(w.user).or_default();
        match videos.get(&w.video).copied() {
            Some(at) if at <= w.at_ms => false,
            Some(at) => {
                let old = Watch { at_ms: at, ..w };
                self.digests[w.bucket()] ^= old.fingerprint() ^ w.fingerprint();
                videos.insert(w.video, w.at_ms);
                true
            }
            None => {
                self.digests[w.bucket()] ^= w.fingerprint();
                videos.insert(w.video, w.at_ms);
                self.count += 1;
                true
            }
        }
    }
}

type WriteRequest = (Vec<Watch>, oneshot::Sender<Result<(), StoreError>>);

/// One node's durable set of watches.
pub struct WatchStore {
    memory: Arc<RwLock<Memory>>,
    writes: mpsc::Sender<WriteRequest>,
    recovered: bool,
}

impl WatchStore {
    /// Opens (or creates) the store in `folder` and loads what it holds.
    pub fn open(folder: &Path) -> Result<WatchStore, StoreError> {
        std::fs::create_dir_all(folder)
            .map_err(|e| store_error(format!("{}: {e}", folder.display())))?;
        let file = folder.join("watches.redb");
        let recovered = file.exists();
        let db = Database::create(file).map_err(store_error)?;
        let mut memory = Memory {
            digests: vec![0; BUCKETS],
            ..Memory::default()
        };
        {
            let txn = db.begin_write().map_err(store_error)?;
            txn.open_table(WATCHES).map_err(store_error)?;
            txn.commit().map_err(store_error)?;
            let read = db.begin_read().map_err(store_error)?;
            let table = read.open_table(WATCHES).map_err(store_error)?;
            for row in table.iter().map_err(store_error)? {
                let (key, value) = row.map_err(store_error)?;
                let (user, video) = key.value();
                memory.apply(Watch {
                    user,
                    video,
                    at_ms: value.value(),
                });
            }
        }
        let memory = Arc::new(RwLock::new(memory));
        let (writes, queue) = mpsc::channel(4096);
        let writer_memory = Arc::clone(&memory);
        std::thread::Builder::new()
            .name("watch-store".into())
            .spawn(move || write_loop(db, queue, writer_memory))
            .map_err(store_error)?;
        Ok(WatchStore {
            memory,
            writes,
            recovered,
        })
    }

    /// Stores `watches` durably; returns once they are on disk.
    pub async fn put(&self, watches: Vec<Watch>) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        self.writes
            .send((watches, done))
            .await
            .map_err(|_| store_error("the writer thread stopped"))?;
        wait.await
            .map_err(|_| store_error("the writer thread stopped"))?
    }

    /// The watches of one user, by video.
    pub fn user(&self, user: u32) -> Vec<Watch> {
        let memory = self.memory.read().expect("store memory");
        memory
            .by_user
            .get(&user)
            .map(|videos| {
                videos
                    .iter()
                    .map(|(video, at_ms)| Watch {
                        user,
                        video: *video,
                        at_ms: *at_ms,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// One digest per bucket.
    pub fn digests(&self) -> Vec<u64> {
        self.memory.read().expect("store memory").digests.clone()
    }

    /// Every watch in the given buckets.
    pub fn in_buckets(&self, buckets: &[u16]) -> Vec<Watch> {
        let wanted: Vec<bool> = (0..BUCKETS)
            .map(|b| buckets.contains(&(b as u16)))
            .collect();
        let memory = self.memory.read().expect("store memory");
        let mut out = Vec::new();
        for (user, videos) in &memory.by_user {
            if wanted[shared::service::bucket_of(*user)] {
                out.extend(videos.iter().map(|(video, at_ms)| Watch {
                    user: *user,
                    video: *video,
                    at_ms: *at_ms,
                }));
            }
        }
        out.sort();
        out
    }

    /// Whether the store file was already there when it was opened (the node kept its
    /// disk across a restart, so it still holds every watch it acknowledged).
    pub fn recovered(&self) -> bool {
        self.recovered
    }

    /// How many (user, video) pairs it holds.
    pub fn len(&self) -> usize {
        self.memory.read().expect("store memory").count
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl shared::anti_entropy::Holdings for WatchStore {
    fn digests(&self) -> Vec<u64> {
        WatchStore::digests(self)
    }

    fn in_buckets(&self, buckets: &[u16]) -> Vec<Watch> {
        WatchStore::in_buckets(self, buckets)
    }
}

/// The writer thread: group what is queued, commit once, then answer everyone.
fn write_loop(db: Database, mut queue: mpsc::Receiver<WriteRequest>, memory: Arc<RwLock<Memory>>) {
    while let Some(first) = queue.blocking_recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let result = commit(&db, group.iter().flat_map(|(w, _)| w.iter().copied()));
        if result.is_ok() {
            let mut memory = memory.write().expect("store memory");
            for (watches, _) in &group {
                for w in watches {
                    memory.apply(*w);
                }
            }
        } else if let Err(e) = &result {
            tracing::error!("{e}");
        }
        for (_, done) in group {
            let _ = done.send(result.clone());
        }
    }
}

fn commit(db: &Database, watches: impl Iterator<Item = Watch>) -> Result<(), StoreError> {
    let txn = db.begin_write().map_err(store_error)?;
    {
        let mut table = txn.open_table(WATCHES).map_err(store_error)?;
        for w in watches {
            let existing = table
                .get((w.user, w.video))
                .map_err(store_error)?
                .map(|v| v.value());
            if existing.is_none_or(|at| w.at_ms < at) {
                table
                    .insert((w.user, w.video), w.at_ms)
                    .map_err(store_error)?;
            }
        }
    }
    txn.commit().map_err(store_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(user: u32, video: u32, at_ms: u64) -> Watch {
        Watch { user, video, at_ms }
    }

    fn temp_folder(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "watch-store-{name}-{}-{}",
            std::process::id(),
            crate::cluster::runtime::clock_ms()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[tokio::test]
    async fn watches_survive_reopening_and_keep_the_earliest_time() {
        let dir = temp_folder("reopen");
        {
            let store = WatchStore::open(&dir).unwrap();
            store
                .put(vec![watch(1, 10, 500), watch(1, 11, 600)])
                .await
                .unwrap();
            store
                .put(vec![watch(1, 10, 400), watch(2, 10, 700)])
                .await
                .unwrap();
            store.put(vec![watch(1, 10, 900)]).await.unwrap();
        }
        // Give the writer thread of the first store time to release the file.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let store = WatchStore::open(&dir).unwrap();
        assert_eq!(store.user(1), vec![watch(1, 10, 400), watch(1, 11, 600)]);
        assert_eq!(store.user(2), vec![watch(2, 10, 700)]);
        assert_eq!(store.len(), 3);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn equal_sets_have_equal_digests_whatever_the_order() {
        let (a_dir, b_dir) = (temp_folder("a"), temp_folder("b"));
        let a = WatchStore::open(&a_dir).unwrap();
        let b = WatchStore::open(&b_dir).unwrap();
        let all = [
            watch(1, 1, 5),
            watch(2, 3, 6),
            watch(1, 1, 4),
            watch(70, 2, 9),
        ];
        for w in all {
            a.put(vec![w]).await.unwrap();
        }
        for w in all.iter().rev() {
            b.put(vec![*w]).await.unwrap();
        }
        assert_eq!(a.digests(), b.digests());
        b.put(vec![watch(3, 3, 3)]).await.unwrap();
        assert_ne!(a.digests(), b.digests());
        let differing: Vec<u16> = (0..BUCKETS)
            .filter(|i| a.digests()[*i] != b.digests()[*i])
            .map(|i| i as u16)
            .collect();
        assert!(b.in_buckets(&differing).contains(&watch(3, 3, 3)));
        assert!(!a.in_buckets(&differing).contains(&watch(3, 3, 3)));
        let _ = std::fs::remove_dir_all(&a_dir);
        let _ = std::fs::remove_dir_all(&b_dir);
    }
}
