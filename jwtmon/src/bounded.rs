//! Bounded LRU maps that allocate as they fill.
//!
//! `lru::BoundedLru::new(n)` reserves its whole hash table up front: a
//! daemon configured for a million tokens pays for them before it has
//! seen one, and the first inserts fault in the table's pages one by one.
//! [`BoundedLru`] keeps the same bound (the least recently used entry
//! gives way when a new key arrives at capacity) on a table that grows by
//! doubling, so memory follows what is stored. Every other method is the
//! wrapped cache's (through `Deref`). [`push_tight`] does the same for
//! the small lists such maps hold per key.

use std::{
    hash::Hash,
    num::NonZeroUsize,
    ops::{Deref, DerefMut},
};

use lru::LruCache;

/// Pushes `x`, reserving room for exactly one when `v` has none: most of
/// the per-key lists a flood creates (addresses of a token, its agents)
/// never hold a second entry, and `Vec` would reserve four.
pub fn push_tight<T>(v: &mut Vec<T>, x: T) {
    if v.capacity() == 0 {
        v.reserve_exact(1);
    }
    v.push(x);
}

/// An LRU map of at most `cap` entries.
pub struct BoundedLru<K: Hash + Eq, V> {
    inner: LruCache<K, V>,
    cap: NonZeroUsize,
}

impl<K: Hash + Eq, V> BoundedLru<K, V> {
    /// An empty map holding at most `cap` entries.
    pub fn new(cap: NonZeroUsize) -> Self {
        Self {
            inner: LruCache::unbounded(),
            cap,
        }
    }

    /// An empty map of at most `cap` entries (at least one).
    pub fn with_capacity(cap: usize) -> Self {
        Self::new(NonZeroUsize::new(cap).unwrap_or(NonZeroUsize::MIN))
    }

    /// The bound.
    pub fn cap(&self) -> NonZeroUsize {
        self.cap
    }

    /// Changes the bound, dropping the least recently used entries beyond it.
    pub fn resize(&mut self, cap: NonZeroUsize) {
        self.cap = cap;
        while self.inner.len() > cap.get() {
            self.inner.pop_lru();
        }
    }

    /// Evicts the least recently used entry when `k` would be one too many.
    fn room_for(&mut self, k: &K) -> Option<(K, V)> {
        if self.inner.len() >= self.cap.get() && !self.inner.contains(k) {
            self.inner.pop_lru()
        } else {
            None
        }
    }

    /// Inserts or replaces; returns the value `k` had.
    pub fn put(&mut self, k: K, v: V) -> Option<V> {
        self.room_for(&k);
        self.inner.put(k, v)
    }

    /// Inserts or replaces; returns the entry that was evicted, or `k`'s
    /// old value, like [`LruCache::push`].
    pub fn push(&mut self, k: K, v: V) -> Option<(K, V)> {
        let evicted = self.room_for(&k);
        self.inner.push(k, v).or(evicted)
    }

    /// `k`'s value, inserted from `f` when absent, marked most recent.
    pub fn get_or_insert<F: FnOnce() -> V>(&mut self, k: K, f: F) -> &V {
        self.room_for(&k);
        self.inner.get_or_insert(k, f)
    }

    /// Like [`Self::get_or_insert`], mutable.
    pub fn get_or_insert_mut<F: FnOnce() -> V>(&mut self, k: K, f: F) -> &mut V {
        self.room_for(&k);
        self.inner.get_or_insert_mut(k, f)
    }
}

impl<K: Hash + Eq, V> Deref for BoundedLru<K, V> {
    type Target = LruCache<K, V>;

    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl<K: Hash + Eq, V> DerefMut for BoundedLru<K, V> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}

impl<'a, K: Hash + Eq, V> IntoIterator for &'a BoundedLru<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = lru::Iter<'a, K, V>;

    fn into_iter(self) -> Self::IntoIter {
        self.inner.iter()
    }
}

impl<'a, K: Hash + Eq, V> IntoIterator for &'a mut BoundedLru<K, V> {
    type Item = (&'a K, &'a mut V);
    type IntoIter = lru::IterMut<'a, K, V>;

    fn into_iter(self) -> Self::IntoIter {
        self.inner.iter_mut()
    }
}

impl<K: Hash + Eq, V> std::fmt::Debug for BoundedLru<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundedLru")
            .field("len", &self.inner.len())
            .field("cap", &self.cap)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_at_most_cap_and_evicts_the_least_recent() {
        let mut m = BoundedLru::with_capacity(3);
        for k in 0..3 {
            m.put(k, k * 10);
        }
        m.get(&0);
        assert_eq!(m.push(3, 30), Some((1, 10)));
        assert_eq!(m.put(0, 1), Some(0));
        *m.get_or_insert_mut(4, || 40) += 1;
        assert_eq!(m.len(), 3);
        assert_eq!(m.peek(&4), Some(&41));
        assert!(!m.contains(&2));
        assert_eq!(*m.get_or_insert(0, || 99), 1);
        m.resize(NonZeroUsize::new(1).unwrap());
        assert_eq!(m.len(), 1);
        assert_eq!(m.cap().get(), 1);
        // Far more keys than the bound never grow it.
        for k in 0..10_000 {
            m.put(k, k);
        }
        assert_eq!(m.len(), 1);
    }
}
