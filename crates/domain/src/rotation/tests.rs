//! The rotation's rules over an in-memory store: everything ends under the
//! new key, a killed run resumes where it stopped, a concurrent rewrite wins,
//! recovery lookups follow their codes, and unreadable values are reported,
//! not lost.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::store::{RotationRecord, RotationStore, SealedRow};
use super::*;
use crate::crypto::MasterKey;
use crate::ports::OsRng;
use crate::time::Timestamp;

/// How many sealed columns there are: the counts below follow the list.
const COLUMNS: u64 = SealedColumn::ALL.len() as u64;

struct At;

impl Clock for At {
    fn now(&self) -> Timestamp {
        Timestamp::from_secs(1_800_000_000)
    }
}

/// (column, id) → (sealed, recovery lookup)
type Rows = BTreeMap<(&'static str, String), (Vec<u8>, Option<Vec<u8>>)>;

#[derive(Default)]
struct Memory {
    rows: Mutex<Rows>,
    rotation: Mutex<Option<RotationRecord>>,
    /// Fails every `reseal` after this many succeeded: a killed process.
    die_after: Mutex<Option<usize>>,
    /// Rewrites this row (as a request would) just before it is re-sealed.
    race: Mutex<Option<(SealedColumn, String, Vec<u8>)>>,
}

#[async_trait]
impl RotationStore for Memory {
    async fn sealed_rows(&self, column: SealedColumn, after: &str, limit: i64) -> Result<Vec<SealedRow>, StoreError> {
        let rows = self.rows.lock().expect("lock");
        Ok(rows
            .iter()
            .filter(|((c, id), _)| *c == column.name() && id.as_str() > after)
            .take(usize::try_from(limit).unwrap_or(0))
            .map(|((_, id), (sealed, _))| SealedRow { id: id.clone(), sealed: sealed.clone() })
            .collect())
    }

    async fn reseal(
        &self,
        column: SealedColumn,
        id: &str,
        old: &[u8],
        new: &[u8],
        lookup: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        {
            let mut die = self.die_after.lock().expect("lock");
            match *die {
                Some(0) => return Err(StoreError::Backend("killed".into())),
                Some(n) => *die = Some(n - 1),
                None => {}
            }
        }
        let mut rows = self.rows.lock().expect("lock");
        let mut race = self.race.lock().expect("lock");
        if race.as_ref().is_some_and(|(c, rid, _)| *c == column && rid == id)
            && let Some((_, _, value)) = race.take()
        {
            rows.insert((column.name(), id.to_owned()), (value, None));
        }
        let Some(row) = rows.get_mut(&(column.name(), id.to_owned())) else { return Ok(false) };
        if row.0 != old {
            return Ok(false);
        }
        row.0 = new.to_vec();
        if let Some(l) = lookup {
            row.1 = Some(l.to_vec());
        }
        Ok(true)
    }

    async fn rotation(&self) -> Result<Option<RotationRecord>, StoreError> {
        Ok(self.rotation.lock().expect("lock").clone())
    }

    async fn save_rotation(&self, record: &RotationRecord) -> Result<(), StoreError> {
        *self.rotation.lock().expect("lock") = Some(record.clone());
        Ok(())
    }

    async fn server_secret(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let rows = self.rows.lock().expect("lock");
        Ok(rows.get(&(SealedColumn::ServerSecret.name(), name.to_owned())).map(|r| r.0.clone()))
    }

    async fn add_server_secret(&self, name: &str, sealed: &[u8], _now: Timestamp) -> Result<bool, StoreError> {
        let mut rows = self.rows.lock().expect("lock");
        let key = (SealedColumn::ServerSecret.name(), name.to_owned());
        if rows.contains_key(&key) {
            return Ok(false);
        }
        rows.insert(key, (sealed.to_vec(), None));
        Ok(true)
    }
}

fn copy(k: &MasterKey) -> MasterKey {
    MasterKey::from_hex(&k.to_hex()).expect("hex")
}

/// A store with `n` values in each column, all sealed under `old`.
fn populated(old: &MasterKey, n: usize) -> Memory {
    let ring = Keyring::new(old);
    let store = Memory::default();
    {
        let mut rows = store.rows.lock().expect("lock");
        for column in SealedColumn::ALL {
            for i in 0..n {
                let id = format!("{}-{i:03}", column.name());
                let plain = format!("secret {id}");
                let sealed = ring.seal(plain.as_bytes(), column.field(&id), &OsRng);
                let lookup = (column == SealedColumn::RecoveryCode)
                    .then(|| ring.keyed_hash(HashPurpose::RecoveryCodeLookup, &[plain.as_bytes()]).to_vec());
                rows.insert((column.name(), id), (sealed, lookup));
            }
        }
    }
    store
}

/// Every value opens under `ring` to what was sealed, and names `key`.
fn assert_all_under(store: &Memory, ring: &Keyring, key: KeyId) {
    for ((column, id), (sealed, lookup)) in store.rows.lock().expect("lock").iter() {
        let column = SealedColumn::from_name(column).expect("column");
        assert_eq!(KeyId::of_sealed(sealed), Some(key), "{id}");
        let plain = ring.open(sealed, column.field(id)).expect("opens");
        assert_eq!(plain, format!("secret {id}").as_bytes());
        if let Some(lookup) = lookup {
            assert_eq!(lookup[..], ring.keyed_hash(HashPurpose::RecoveryCodeLookup, &[&plain])[..], "{id}");
        }
    }
}

#[tokio::test]
async fn sec24_every_value_ends_under_the_new_key_and_the_old_key_opens_nothing() {
    let (old, new) = (MasterKey::generate(&OsRng), MasterKey::generate(&OsRng));
    let store = populated(&old, 5);
    let ring = Keyring::with_keys(&new, &[copy(&old)]);
    let rotation = KeyRotation::new(&store, &ring, &At, &OsRng);
    let mut batches = 0;
    let report = rotation.run(2, &mut |_, _| batches += 1).await.expect("runs");
    assert_eq!(report.resealed, 5 * COLUMNS);
    assert!(report.unreadable.is_empty());
    assert_eq!(batches, COLUMNS * 3);

    let after = Keyring::new(&copy(&new));
    assert_all_under(&store, &after, new.id());
    let census = rotation.census(10).await.expect("census");
    assert_eq!(census.not_under(new.id()), 0);
    let record = store.rotation.lock().expect("lock").clone().expect("recorded");
    assert!(record.finished_at.is_some());
    assert_eq!(record.resealed, i64::try_from(5 * COLUMNS).expect("small"));

    let only_old = Keyring::new(&copy(&old));
    let (_, (sealed, _)) =
        store.rows.lock().expect("lock").iter().next().map(|(k, v)| (k.clone(), v.clone())).expect("row");
    assert!(only_old.open(&sealed, SealedColumn::Authenticator.field("authenticators-000")).is_err());

    // Run again: nothing to do, nothing changed.
    let again = rotation.run(2, &mut |_, _| {}).await.expect("runs");
    assert_eq!(again, Report { resealed: 0, unreadable: vec![], was_finished: true });
}

#[tokio::test]
async fn a_killed_rotation_resumes_from_its_saved_cursor() {
    let (old, new) = (MasterKey::generate(&OsRng), MasterKey::generate(&OsRng));
    let store = populated(&old, 4);
    let ring = Keyring::with_keys(&new, &[copy(&old)]);
    let rotation = KeyRotation::new(&store, &ring, &At, &OsRng);
    *store.die_after.lock().expect("lock") = Some(6);
    assert!(rotation.run(3, &mut |_, _| {}).await.is_err());

    let saved = store.rotation.lock().expect("lock").clone().expect("progress saved");
    assert_eq!(saved.finished_at, None);
    // Killed inside the second column's first batch: the last saved batch
    // ended the first column.
    assert_eq!(saved.column, SealedColumn::ALL[0].name());
    assert_eq!(saved.cursor, format!("{}-003", SealedColumn::ALL[0].name()));
    assert_eq!(saved.resealed, 4);
    let census = rotation.census(10).await.expect("census");
    assert_eq!(census.not_under(new.id()), 4 * COLUMNS - 6);

    *store.die_after.lock().expect("lock") = None;
    let report = rotation.run(3, &mut |_, _| {}).await.expect("resumes");
    assert_eq!(report.resealed, 4 * COLUMNS - 6);
    assert_all_under(&store, &Keyring::new(&copy(&new)), new.id());
}

#[tokio::test]
async fn a_value_rewritten_during_the_rotation_keeps_the_rewrite() {
    let (old, new) = (MasterKey::generate(&OsRng), MasterKey::generate(&OsRng));
    let store = populated(&old, 2);
    let ring = Keyring::with_keys(&new, &[copy(&old)]);
    let id = "authenticators-001";
    let rewritten = ring.seal(format!("secret {id}").as_bytes(), SealedColumn::Authenticator.field(id), &OsRng);
    *store.race.lock().expect("lock") = Some((SealedColumn::Authenticator, id.to_owned(), rewritten.clone()));
    let rotation = KeyRotation::new(&store, &ring, &At, &OsRng);
    let report = rotation.run(10, &mut |_, _| {}).await.expect("runs");
    assert_eq!(report.resealed, 2 * COLUMNS - 1);
    let rows = store.rows.lock().expect("lock");
    assert_eq!(rows.get(&("authenticators", id.to_owned())).expect("row").0, rewritten);
}

#[tokio::test]
async fn unreadable_values_are_reported_and_left_in_place() {
    let (old, new) = (MasterKey::generate(&OsRng), MasterKey::generate(&OsRng));
    let store = populated(&old, 1);
    let stranger = Keyring::new(&MasterKey::generate(&OsRng));
    let lost = stranger.seal(b"x", SealedColumn::Outbox.field("outbox-000"), &OsRng);
    store.rows.lock().expect("lock").insert(("outbox", "outbox-000".into()), (lost.clone(), None));
    let ring = Keyring::with_keys(&new, &[copy(&old)]);
    let report = KeyRotation::new(&store, &ring, &At, &OsRng).run(10, &mut |_, _| {}).await.expect("runs");
    assert_eq!(report.unreadable, vec![(SealedColumn::Outbox, "outbox-000".to_owned())]);
    assert_eq!(report.resealed, COLUMNS - 1);
    assert_eq!(store.rows.lock().expect("lock").get(&("outbox", "outbox-000".into())).expect("kept").0, lost);
}

#[tokio::test]
async fn the_vapid_seed_is_pinned_once_and_reads_back_under_the_new_key() {
    let (old, new) = (MasterKey::generate(&OsRng), MasterKey::generate(&OsRng));
    let store = Memory::default();
    let ring = Keyring::with_keys(&new, &[copy(&old)]);
    let rotation = KeyRotation::new(&store, &ring, &At, &OsRng);
    assert_eq!(rotation.pinned_vapid_seed().await.expect("reads"), None);
    assert!(rotation.pin_vapid_seed(&old.vapid_seed()).await.expect("pins"));
    assert!(!rotation.pin_vapid_seed(&new.vapid_seed()).await.expect("first one stays"));
    let after = Keyring::new(&copy(&new));
    let read = KeyRotation::new(&store, &after, &At, &OsRng).pinned_vapid_seed().await.expect("reads");
    assert_eq!(read, Some(old.vapid_seed()));
}

#[test]
fn every_sealed_column_is_listed_once_with_a_name_that_reads_back() {
    for (i, c) in SealedColumn::ALL.iter().enumerate() {
        assert_eq!(SealedColumn::from_name(c.name()), Some(*c));
        assert!(!SealedColumn::ALL[i + 1..].contains(c));
    }
}
