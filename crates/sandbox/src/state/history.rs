//! `TrainerState.log_history`, kept once and compact: the state, the
//! plugins' view of it (`log-history` in the WIT contract) and the writer of
//! `trainer_state.json` share one store. Keys are interned (a run logs a
//! handful of names a million times), and an entry holds a key id and a
//! value per item, with no string of its own unless a value is text.
//!
//! Cloning a [`LogHistory`] copies it (a `TrainerState` is a value);
//! [`LogHistory::share`] gives a second handle on the same store, which the
//! run's view holds.

use super::{Logs, Value};
use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The log history of a run: every `log` entry, in order.
#[derive(Default)]
pub struct LogHistory(Arc<RwLock<Store>>);

#[derive(Default, Clone)]
struct Store {
    /// The interned keys, by id.
    keys: Vec<Box<str>>,
    ids: HashMap<Box<str>, u32>,
    entries: Vec<Entry>,
}

/// One entry: (key id, value) in the order they were logged.
#[derive(Clone)]
struct Entry(Box<[(u32, Stored)]>);

/// A value without the spare capacity of a `String`.
#[derive(Clone)]
enum Stored {
    Float(f64),
    Int(i64),
    Flag(bool),
    Text(Box<str>),
}

impl Store {
    fn id(&mut self, key: &str) -> u32 {
        if let Some(id) = self.ids.get(key) {
            return *id;
        }
        let id = self.keys.len() as u32;
        self.keys.push(key.into());
        self.ids.insert(key.into(), id);
        id
    }

    fn logs(&self, entry: &Entry, out: &mut Logs) {
        out.0.clear();
        out.0.extend(entry.0.iter().map(|(id, v)| {
            let value = match v {
                Stored::Float(f) => Value::Float(*f),
                Stored::Int(i) => Value::Int(*i),
                Stored::Flag(b) => Value::Flag(*b),
                Stored::Text(s) => Value::Text(s.to_string()),
            };
            (self.keys[*id as usize].to_string(), value)
        }));
    }
}

impl LogHistory {
    /// An empty history.
    pub fn new() -> LogHistory {
        LogHistory::default()
    }

    /// A second handle on the same entries: what one pushes, the other sees.
    pub fn share(&self) -> LogHistory {
        LogHistory(Arc::clone(&self.0))
    }

    fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Store> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends an entry.
    pub fn push(&self, logs: &Logs) {
        let mut store = self.write();
        let items: Vec<(u32, Stored)> = logs
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    Value::Float(f) => Stored::Float(*f),
                    Value::Int(i) => Stored::Int(*i),
                    Value::Flag(b) => Stored::Flag(*b),
                    Value::Text(s) => Stored::Text(s.as_str().into()),
                };
                (store.id(k), value)
            })
            .collect();
        store.entries.push(Entry(items.into_boxed_slice()));
    }

    /// Replaces every entry with those of `other` (a resumed run's).
    pub fn replace_with(&self, other: &LogHistory) {
        let copy = other.read().clone();
        *self.write() = copy;
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.read().entries.len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entry `index`.
    pub fn get(&self, index: usize) -> Option<Logs> {
        let store = self.read();
        let entry = store.entries.get(index)?;
        let mut logs = Logs::new();
        store.logs(entry, &mut logs);
        Some(logs)
    }

    /// The last entry.
    pub fn last(&self) -> Option<Logs> {
        self.len().checked_sub(1).and_then(|i| self.get(i))
    }

    /// Calls `f` with each entry in order, one at a time (the history is
    /// never copied whole).
    pub fn for_each(&self, mut f: impl FnMut(&Logs)) {
        let store = self.read();
        let mut logs = Logs::new();
        for entry in &store.entries {
            store.logs(entry, &mut logs);
            f(&logs);
        }
    }

    /// Like [`LogHistory::for_each`], stopping at the first error.
    pub fn try_for_each<E>(&self, mut f: impl FnMut(&Logs) -> Result<(), E>) -> Result<(), E> {
        let store = self.read();
        let mut logs = Logs::new();
        for entry in &store.entries {
            store.logs(entry, &mut logs);
            f(&logs)?;
        }
        Ok(())
    }

    /// The last entry for which `f` holds.
    pub fn rfind(&self, mut f: impl FnMut(&Logs) -> bool) -> Option<Logs> {
        let store = self.read();
        let mut logs = Logs::new();
        for entry in store.entries.iter().rev() {
            store.logs(entry, &mut logs);
            if f(&logs) {
                return Some(logs);
            }
        }
        None
    }

    /// The entries in order, each made when it is reached (the history is
    /// read-locked while the iterator lives: push nothing meanwhile).
    pub fn iter(&self) -> Iter<'_> {
        let store = self.read();
        let end = store.entries.len();
        Iter {
            store,
            front: 0,
            back: end,
        }
    }

    /// Every entry, copied out (for tests and small histories).
    pub fn to_vec(&self) -> Vec<Logs> {
        let mut all = Vec::with_capacity(self.len());
        self.for_each(|logs| all.push(logs.clone()));
        all
    }
}

/// The entries of a [`LogHistory`], from [`LogHistory::iter`].
pub struct Iter<'a> {
    store: RwLockReadGuard<'a, Store>,
    front: usize,
    back: usize,
}

impl Iter<'_> {
    fn entry(&self, index: usize) -> Logs {
        let mut logs = Logs::new();
        self.store.logs(&self.store.entries[index], &mut logs);
        logs
    }
}

impl Iterator for Iter<'_> {
    type Item = Logs;

    fn next(&mut self) -> Option<Logs> {
        (self.front < self.back).then(|| {
            self.front += 1;
            self.entry(self.front - 1)
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.back - self.front;
        (n, Some(n))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Logs> {
        (self.front < self.back).then(|| {
            self.back -= 1;
            self.entry(self.back)
        })
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl From<Vec<Logs>> for LogHistory {
    fn from(entries: Vec<Logs>) -> LogHistory {
        let history = LogHistory::new();
        for logs in &entries {
            history.push(logs);
        }
        history
    }
}

/// A copy, as a `TrainerState` is copied: not a shared handle.
impl Clone for LogHistory {
    fn clone(&self) -> LogHistory {
        LogHistory(Arc::new(RwLock::new(self.read().clone())))
    }
}

impl PartialEq for LogHistory {
    fn eq(&self, other: &LogHistory) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.to_vec() == other.to_vec()
    }
}

impl std::fmt::Debug for LogHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.to_vec()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(step: i64) -> Logs {
        let mut logs = Logs::new();
        logs.insert("loss", Value::Float(0.5 / step as f64));
        logs.insert("note", Value::Text(format!("s{step}")));
        logs.insert("ok", Value::Flag(step % 2 == 0));
        logs.insert("step", Value::Int(step));
        logs
    }

    #[test]
    fn entries_come_back_as_they_were_logged() {
        let h = LogHistory::new();
        for step in 1..=3 {
            h.push(&entry(step));
        }
        assert_eq!(h.len(), 3);
        assert_eq!(h.get(1), Some(entry(2)));
        assert_eq!(h.last(), Some(entry(3)));
        assert_eq!(h.get(3), None);
        assert_eq!(h.to_vec(), (1..=3).map(entry).collect::<Vec<_>>());
        let back: Vec<Logs> = h.iter().rev().collect();
        assert_eq!(back, vec![entry(3), entry(2), entry(1)]);
        assert_eq!(h.iter().len(), 3);
        let keys: Vec<String> = h.get(0).unwrap().keys().map(str::to_string).collect();
        assert_eq!(keys, ["loss", "note", "ok", "step"]);
    }

    #[test]
    fn a_shared_handle_sees_pushes_and_a_clone_does_not() {
        let h = LogHistory::new();
        let view = h.share();
        let copy = h.clone();
        h.push(&entry(1));
        assert_eq!(view.len(), 1);
        assert_eq!(copy.len(), 0);
        let resumed = LogHistory::from(vec![entry(7), entry(8)]);
        h.replace_with(&resumed);
        assert_eq!(view.to_vec(), vec![entry(7), entry(8)]);
    }
}
