//! `BufferPool`: fixed slots of `batch.size` bytes over caller storage.

use core::fmt;

use crate::storage::Table;

/// A handle to an allocation of one or more contiguous slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SlotId {
    index: u32,
    count: u32,
    generation: u32,
}

impl SlotId {
    /// Index of the first slot.
    pub const fn index(&self) -> usize {
        self.index as usize
    }

    /// Number of contiguous slots.
    pub const fn count(&self) -> usize {
        self.count as usize
    }

    /// Generation of the first slot when it was allocated.
    pub const fn generation(&self) -> u32 {
        self.generation
    }
}

/// Why the pool could not do what was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolError {
    /// Not enough contiguous free slots right now; retry after deallocating.
    Exhausted,
    /// The request is larger than the whole pool and can never succeed (Java: "Attempt to
    /// allocate X bytes, but there is a hard limit of Y on memory allocations").
    TooLarge {
        /// Bytes requested.
        requested: usize,
        /// Bytes of the whole pool.
        capacity: usize,
    },
    /// The handle was already deallocated (or never came from this pool).
    StaleHandle,
    /// The storage given to [`BufferPool::new`] is smaller than one slot.
    StorageTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        available: usize,
    },
    /// The slot size is zero.
    ZeroSlotSize,
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Exhausted => f.write_str("buffer pool exhausted"),
            Self::TooLarge {
                requested,
                capacity,
            } => write!(
                f,
                "attempt to allocate {requested} bytes from a pool of {capacity} bytes"
            ),
            Self::StaleHandle => f.write_str("stale buffer pool handle"),
            Self::StorageTooSmall { needed, available } => write!(
                f,
                "pool storage too small: needed {needed} bytes, given {available}"
            ),
            Self::ZeroSlotSize => f.write_str("pool slot size is zero"),
        }
    }
}

impl core::error::Error for PoolError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    Free,
    /// First slot of an allocation of `count` slots.
    Head {
        count: u32,
    },
    /// A later slot of an allocation.
    Continuation,
}

/// One slot's state in the pool's table (8 bytes; opaque).
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    generation: u32,
    state: SlotState,
}

/// A pool of fixed-size slots over caller storage `S`, with their states in table `T`.
///
/// Like Java's `BufferPool`, the pool bounds the memory held by records waiting to be
/// sent (`buffer.memory` = slots × `slot_size`). Unlike it, the pool never blocks and never
/// allocates: [`BufferPool::allocate`] either hands out a [`SlotId`] or returns
/// [`PoolError::Exhausted`], and the caller decides whether to wait, drop or fail.
///
/// A request larger than one slot takes several *contiguous* free slots, if there are any.
/// Handles carry a generation: using one after it was deallocated is detected and reported
/// as [`PoolError::StaleHandle`], never a panic or a silent alias.
///
/// Firmware passes a `&'static mut [u8]` or an array; a std transport passes a `Vec<u8>`
/// that the pool then owns. The pool uses the first `slot_count() * slot_size` bytes, where
/// `slot_count() = storage / slot_size`, at most the slot table's limit.
///
/// ```
/// use kafka_edge_core::FixedPool;
/// let mut pool = FixedPool::<_, 4>::new([0u8; 4 * 1024], 1024)?;
/// let one = pool.allocate(100)?;            // one slot
/// let three = pool.allocate(2500)?;         // three contiguous slots
/// assert_eq!(pool.buffer(three)?.len(), 3 * 1024);
/// assert!(pool.allocate(1).is_err());       // exhausted, nothing blocks
/// pool.deallocate(one)?;
/// assert!(pool.deallocate(one).is_err());   // stale handle detected
/// # Ok::<(), kafka_edge_core::PoolError>(())
/// ```
#[derive(Debug)]
pub struct BufferPool<S, T> {
    storage: S,
    slot_size: usize,
    slots: T,
    /// Slots in use by this pool: `min(T's limit, storage / slot_size)`.
    slot_count: usize,
    free_slots: usize,
    /// Where the next search starts (next fit), so that FIFO use stays O(1).
    next_fit: usize,
    /// A run kept for a multi-slot allocation that found enough free slots but none
    /// contiguous (see [`BufferPool::allocate`]).
    reserved: Option<Reservation>,
}

/// Slots `start..start + count` kept for a large allocation while they drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reservation {
    start: usize,
    count: usize,
    /// Allocation attempts left, once the run is all free, before the reservation lapses
    /// (the allocation that asked for it was given up).
    grace: usize,
}

/// A pool with its slot states inline, at most `N` slots (no heap).
pub type FixedPool<S, const N: usize> = BufferPool<S, heapless::Vec<Slot, N>>;

impl<S: AsRef<[u8]> + AsMut<[u8]>, T: Table<Slot>> BufferPool<S, T> {
    /// A pool of `slot_size`-byte slots (`batch.size`) over `storage`: as many as the
    /// storage holds (`buffer.memory / batch.size`), at most what table `T` can hold (a
    /// `heapless::Vec<Slot, N>` caps it at `N`; a growable table at `u32::MAX`).
    pub fn new(storage: S, slot_size: usize) -> Result<Self, PoolError> {
        if slot_size == 0 {
            return Err(PoolError::ZeroSlotSize);
        }
        let mut slots = T::with_limit(u32::MAX as usize);
        let available = storage.as_ref().len();
        let slot_count = (available / slot_size)
            .min(slots.limit())
            .min(u32::MAX as usize);
        if slot_count == 0 {
            return Err(PoolError::StorageTooSmall {
                needed: slot_size,
                available,
            });
        }
        let free = Slot {
            generation: 0,
            state: SlotState::Free,
        };
        slots
            .resize(slot_count, free)
            .map_err(|_| PoolError::StorageTooSmall {
                needed: slot_size,
                available,
            })?;
        Ok(Self {
            storage,
            slot_size,
            slots,
            slot_count,
            free_slots: slot_count,
            next_fit: 0,
            reserved: None,
        })
    }

    /// Slots this pool manages: `storage / slot_size`, at most the table's limit.
    pub const fn slot_count(&self) -> usize {
        self.slot_count
    }

    /// Bytes per slot.
    pub const fn slot_size(&self) -> usize {
        self.slot_size
    }

    /// Total bytes (`buffer.memory`).
    pub const fn capacity_bytes(&self) -> usize {
        self.slot_size * self.slot_count
    }

    /// Bytes in free slots (not necessarily contiguous).
    pub const fn free_bytes(&self) -> usize {
        self.slot_size * self.free_slots
    }

    /// Free slots.
    pub const fn free_slots(&self) -> usize {
        self.free_slots
    }

    /// Slots in use.
    pub const fn used_slots(&self) -> usize {
        self.slot_count - self.free_slots
    }

    /// Slots needed for `len` bytes (at least one).
    pub const fn slots_for(&self, len: usize) -> usize {
        let n = len.div_ceil(self.slot_size);
        if n == 0 { 1 } else { n }
    }

    /// Allocates enough contiguous slots for `len` bytes. Never blocks.
    ///
    /// A record larger than a slot needs a run of free slots. When enough slots are free
    /// but no run is (the pool is fragmented by batches in flight), the run with the fewest
    /// slots in use is reserved for it: other allocations keep out of it while its batches
    /// complete, and the same allocation asked again gets it once it is free (Java serves
    /// such a record from memory outside its pool; a pool without heap waits for a run
    /// instead of starving behind smaller allocations). A reservation nobody claims lapses
    /// after as many allocation attempts as the pool has slots once its run is free.
    pub fn allocate(&mut self, len: usize) -> Result<SlotId, PoolError> {
        let count = self.slots_for(len);
        if count > self.slot_count {
            return Err(PoolError::TooLarge {
                requested: len,
                capacity: self.capacity_bytes(),
            });
        }
        self.age_reservation();
        if count > self.free_slots {
            return Err(PoolError::Exhausted);
        }
        let claim = self
            .reserved
            .filter(|r| r.count == count && self.run_is_free(r.start, count))
            .map(|r| r.start);
        let start = match claim {
            Some(start) => {
                self.reserved = None;
                Some(start)
            }
            None => {
                // Smaller allocations keep out of the reserved run; as large or larger
                // ones may take it (they need a run as much).
                let avoid = self
                    .reserved
                    .filter(|r| count < r.count)
                    .map(|r| (r.start, r.start + r.count));
                self.find_run(self.next_fit, self.slot_count, count, avoid)
                    .or_else(|| {
                        let to = (self.next_fit + count - 1).min(self.slot_count);
                        self.find_run(0, to, count, avoid)
                    })
            }
        };
        let Some(start) = start else {
            if count > 1 && self.reserved.is_none() {
                self.reserve(count);
            }
            return Err(PoolError::Exhausted);
        };
        if self
            .reserved
            .is_some_and(|r| start < r.start + r.count && r.start < start + count)
        {
            self.reserved = None;
        }
        self.take_run(start, count)
    }

    /// Marks the free slots `start..start + count` as one allocation.
    fn take_run(&mut self, start: usize, count: usize) -> Result<SlotId, PoolError> {
        let run = self
            .slots
            .get_mut(start..start + count)
            .ok_or(PoolError::Exhausted)?;
        let (head, rest) = run.split_first_mut().ok_or(PoolError::Exhausted)?;
        // `count <= slot_count <= u32::MAX` and `start < slot_count`.
        let id = SlotId {
            index: start as u32,
            count: count as u32,
            generation: head.generation,
        };
        head.state = SlotState::Head { count: id.count };
        for s in rest {
            s.state = SlotState::Continuation;
        }
        self.free_slots -= count;
        self.next_fit = (start + count) % self.slot_count;
        Ok(id)
    }

    /// Shrinks allocation `id` to the slots `len` bytes need (at least one), freeing the
    /// ones after; the handle returned replaces `id`. A batch that grew while it waited
    /// gives back what its closed bytes do not use.
    pub fn shrink(&mut self, id: SlotId, len: usize) -> Result<SlotId, PoolError> {
        self.check(id)?;
        let count = self.slots_for(len);
        if count >= id.count() {
            return Ok(id);
        }
        let tail = self
            .slots
            .get_mut(id.index() + count..id.index() + id.count())
            .ok_or(PoolError::StaleHandle)?;
        for s in tail.iter_mut() {
            s.state = SlotState::Free;
            s.generation = s.generation.wrapping_add(1);
        }
        let head = self
            .slots
            .get_mut(id.index())
            .ok_or(PoolError::StaleHandle)?;
        // `count < id.count <= u32::MAX`.
        head.state = SlotState::Head {
            count: count as u32,
        };
        self.free_slots += id.count() - count;
        Ok(SlotId {
            count: count as u32,
            ..id
        })
    }

    /// Free slots outside a run reserved for a large allocation (what smaller allocations
    /// and growth may take).
    pub fn unreserved_free_slots(&self) -> usize {
        let reserved_free = self.reserved.map_or(0, |r| {
            self.slots.get(r.start..r.start + r.count).map_or(0, |run| {
                run.iter().filter(|s| s.state == SlotState::Free).count()
            })
        });
        self.free_slots.saturating_sub(reserved_free)
    }

    /// Grows allocation `id` to at least `len` bytes, keeping its first `keep` bytes; the
    /// handle returned replaces `id` (the old one is stale afterwards when the allocation
    /// moved). Never blocks and never reserves: a batch that grows does so only with memory
    /// nobody waits for.
    ///
    /// The free slots right after the allocation are taken when there are enough (nothing
    /// is copied); otherwise a free run elsewhere is taken, the kept bytes copied into it and
    /// the old slots freed. [`PoolError::Exhausted`] when neither is free, and `id` is then
    /// unchanged.
    pub fn grow(&mut self, id: SlotId, len: usize, keep: usize) -> Result<SlotId, PoolError> {
        self.check(id)?;
        let count = self.slots_for(len);
        if count <= id.count() {
            return Ok(id);
        }
        let extra = count - id.count();
        if extra > self.free_slots {
            return Err(PoolError::Exhausted);
        }
        let reserved = self.reserved.map(|r| (r.start, r.start + r.count));
        let outside = |at: usize| !reserved.is_some_and(|(a, b)| at >= a && at < b);
        let after = id.index() + id.count();
        let in_place = after + extra <= self.slot_count
            && self.run_is_free(after, extra)
            && (after..after + extra).all(outside);
        if in_place {
            let rest = self
                .slots
                .get_mut(after..after + extra)
                .ok_or(PoolError::Exhausted)?;
            for s in rest {
                s.state = SlotState::Continuation;
            }
            let head = self
                .slots
                .get_mut(id.index())
                .ok_or(PoolError::StaleHandle)?;
            // `count <= slot_count <= u32::MAX` (checked by `slots_for` and the loop above).
            head.state = SlotState::Head {
                count: count as u32,
            };
            self.free_slots -= extra;
            return Ok(SlotId {
                count: count as u32,
                ..id
            });
        }
        if count > self.free_slots {
            return Err(PoolError::Exhausted);
        }
        let start = self
            .find_run(self.next_fit, self.slot_count, count, reserved)
            .or_else(|| {
                let to = (self.next_fit + count - 1).min(self.slot_count);
                self.find_run(0, to, count, reserved)
            })
            .ok_or(PoolError::Exhausted)?;
        let from = self.range(id);
        let keep = keep.min(from.len());
        let grown = self.take_run(start, count)?;
        let to = self.range(grown).start;
        self.storage
            .as_mut()
            .copy_within(from.start..from.start + keep, to);
        self.deallocate(id)?;
        Ok(grown)
    }

    /// Whether slots `start..start + count` are all free.
    fn run_is_free(&self, start: usize, count: usize) -> bool {
        self.slots
            .get(start..start + count)
            .is_some_and(|run| run.iter().all(|s| s.state == SlotState::Free))
    }

    /// Reserves the run of `count` slots with the fewest slots in use.
    fn reserve(&mut self, count: usize) {
        let used = |s: &Slot| usize::from(s.state != SlotState::Free);
        let Some(first) = self.slots.get(..count) else {
            return;
        };
        let mut in_use: usize = first.iter().map(used).sum();
        let (mut best, mut best_used) = (0, in_use);
        for start in 1..=self.slot_count.saturating_sub(count) {
            let (Some(out), Some(inc)) =
                (self.slots.get(start - 1), self.slots.get(start + count - 1))
            else {
                break;
            };
            in_use = in_use - used(out) + used(inc);
            if in_use < best_used {
                (best, best_used) = (start, in_use);
            }
        }
        self.reserved = Some(Reservation {
            start: best,
            count,
            grace: self.slot_count,
        });
    }

    /// Counts an allocation attempt against a reservation whose run is free.
    fn age_reservation(&mut self) {
        if let Some(r) = self.reserved
            && self.run_is_free(r.start, r.count)
        {
            self.reserved = r
                .grace
                .checked_sub(1)
                .map(|grace| Reservation { grace, ..r });
        }
    }

    /// Whether a run is reserved for a large allocation (see [`allocate`](Self::allocate)).
    pub fn has_reservation(&self) -> bool {
        self.reserved.is_some()
    }

    /// The reserved run, as `(first slot, slots)`, if any.
    pub fn reserved_run(&self) -> Option<(usize, usize)> {
        self.reserved.map(|r| (r.start, r.count))
    }

    /// First index of `count` free slots within `from..to`, outside `avoid`.
    fn find_run(
        &self,
        from: usize,
        to: usize,
        count: usize,
        avoid: Option<(usize, usize)>,
    ) -> Option<usize> {
        let mut run_start = from;
        let mut run_len = 0;
        for (i, slot) in self.slots.get(from..to)?.iter().enumerate() {
            let at = from + i;
            let kept = avoid.is_some_and(|(a, b)| at >= a && at < b);
            if slot.state == SlotState::Free && !kept {
                if run_len == 0 {
                    run_start = at;
                }
                run_len += 1;
                if run_len == count {
                    return Some(run_start);
                }
            } else {
                run_len = 0;
            }
        }
        None
    }

    fn check(&self, id: SlotId) -> Result<(), PoolError> {
        match self.slots.get(id.index()) {
            Some(Slot {
                generation,
                state: SlotState::Head { count },
            }) if *generation == id.generation && *count == id.count => Ok(()),
            _ => Err(PoolError::StaleHandle),
        }
    }

    /// Whether `id` is a live allocation of this pool.
    pub fn contains(&self, id: SlotId) -> bool {
        self.check(id).is_ok()
    }

    /// Frees the slots of `id`; the handle (and any copy of it) becomes stale.
    pub fn deallocate(&mut self, id: SlotId) -> Result<(), PoolError> {
        self.check(id)?;
        let run = self
            .slots
            .get_mut(id.index()..id.index() + id.count())
            .ok_or(PoolError::StaleHandle)?;
        for s in run.iter_mut() {
            s.state = SlotState::Free;
        }
        if let Some(head) = run.first_mut() {
            head.generation = head.generation.wrapping_add(1);
        }
        self.free_slots += id.count();
        Ok(())
    }

    fn range(&self, id: SlotId) -> core::ops::Range<usize> {
        let start = id.index() * self.slot_size;
        start..start + id.count() * self.slot_size
    }

    /// The bytes of `id` (`count * slot_size` of them).
    pub fn buffer(&self, id: SlotId) -> Result<&[u8], PoolError> {
        self.check(id)?;
        let range = self.range(id);
        self.storage
            .as_ref()
            .get(range)
            .ok_or(PoolError::StaleHandle)
    }

    /// The bytes of `id`, mutably.
    pub fn buffer_mut(&mut self, id: SlotId) -> Result<&mut [u8], PoolError> {
        self.check(id)?;
        let range = self.range(id);
        self.storage
            .as_mut()
            .get_mut(range)
            .ok_or(PoolError::StaleHandle)
    }

    /// The bytes of `read` and, mutably, those of `write` at the same time (to copy from one
    /// allocation into another, as when a batch is split). Two live allocations never
    /// overlap; the same handle twice is [`PoolError::StaleHandle`].
    pub fn buffer_pair(
        &mut self,
        read: SlotId,
        write: SlotId,
    ) -> Result<(&[u8], &mut [u8]), PoolError> {
        let (read, write) = self.buffers_mut(read, write)?;
        Ok((read, write))
    }

    /// The bytes of two allocations, both mutably (a batch and the scratch it is compressed
    /// into). The same handle twice is [`PoolError::StaleHandle`].
    pub fn buffers_mut(
        &mut self,
        a: SlotId,
        b: SlotId,
    ) -> Result<(&mut [u8], &mut [u8]), PoolError> {
        self.check(a)?;
        self.check(b)?;
        if a.index() == b.index() {
            return Err(PoolError::StaleHandle);
        }
        let (ra, rb) = (self.range(a), self.range(b));
        let storage = self.storage.as_mut();
        if ra.start < rb.start {
            let (low, high) = storage
                .split_at_mut_checked(rb.start)
                .ok_or(PoolError::StaleHandle)?;
            let a = low.get_mut(ra).ok_or(PoolError::StaleHandle)?;
            let b = high.get_mut(..rb.len()).ok_or(PoolError::StaleHandle)?;
            Ok((a, b))
        } else {
            let (low, high) = storage
                .split_at_mut_checked(ra.start)
                .ok_or(PoolError::StaleHandle)?;
            let b = low.get_mut(rb).ok_or(PoolError::StaleHandle)?;
            let a = high.get_mut(..ra.len()).ok_or(PoolError::StaleHandle)?;
            Ok((a, b))
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn grow_takes_the_slots_after_in_place_else_moves_the_kept_bytes() {
        let mut pool = FixedPool::<_, 8>::new([0u8; 80], 10).unwrap();
        let a = pool.allocate(10).unwrap();
        pool.buffer_mut(a).unwrap().copy_from_slice(b"0123456789");
        // Slots 1 and 2 are free: in place, same index and generation.
        let a = pool.grow(a, 25, 10).unwrap();
        assert_eq!((a.index(), a.count()), (0, 3));
        assert_eq!(&pool.buffer(a).unwrap()[..10], b"0123456789");
        assert_eq!(pool.free_slots(), 5);
        // Slot 3 taken: growing to 4 slots moves to 4..8 with the first 7 bytes kept.
        let b = pool.allocate(10).unwrap();
        assert_eq!(b.index(), 3);
        let moved = pool.grow(a, 40, 7).unwrap();
        assert_eq!((moved.index(), moved.count()), (4, 4));
        assert_eq!(&pool.buffer(moved).unwrap()[..7], b"0123456");
        assert_eq!(
            pool.buffer(a),
            Err(PoolError::StaleHandle),
            "the old handle is stale"
        );
        assert_eq!(pool.free_slots(), 3);
        // No run of 5: exhausted, and the allocation is unchanged.
        assert_eq!(pool.grow(moved, 50, 40), Err(PoolError::Exhausted));
        assert!(pool.contains(moved) && !pool.has_reservation());
        // Asking for no more than it has changes nothing.
        assert_eq!(pool.grow(moved, 30, 0), Ok(moved));
        pool.deallocate(moved).unwrap();
        pool.deallocate(b).unwrap();
        assert_eq!(pool.free_slots(), 8);
    }

    #[test]
    fn shrink_frees_the_slots_after_the_kept_bytes() {
        let mut pool = FixedPool::<_, 8>::new([0u8; 80], 10).unwrap();
        let a = pool.allocate(40).unwrap();
        pool.buffer_mut(a).unwrap()[..12].copy_from_slice(b"0123456789ab");
        let a = pool.shrink(a, 12).unwrap();
        assert_eq!((a.index(), a.count()), (0, 2));
        assert_eq!(&pool.buffer(a).unwrap()[..12], b"0123456789ab");
        assert_eq!(pool.free_slots(), 6);
        // The freed slots are allocated again (a run of six from slot 2), and the shrunk
        // allocation is untouched.
        let b = pool.allocate(60).unwrap();
        assert_eq!((b.index(), b.count()), (2, 6));
        assert_eq!(pool.shrink(a, 20), Ok(a), "already no larger");
        pool.deallocate(a).unwrap();
        pool.deallocate(b).unwrap();
        assert_eq!(pool.free_slots(), 8);
    }

    #[test]
    fn grow_keeps_out_of_a_reserved_run() {
        // 4 slots: a b c d; b and d freed; a run of 2 is reserved (slots 0..2 or 2..4).
        let mut pool = FixedPool::<_, 4>::new([0u8; 40], 10).unwrap();
        let ids: std::vec::Vec<_> = (0..4).map(|_| pool.allocate(10).unwrap()).collect();
        pool.deallocate(ids[1]).unwrap();
        pool.deallocate(ids[3]).unwrap();
        assert_eq!(pool.allocate(20), Err(PoolError::Exhausted));
        let (start, _) = pool.reserved_run().unwrap();
        // The slot after the allocation inside the reserved run is not taken.
        let inside = if start == 0 { ids[0] } else { ids[2] };
        assert_eq!(pool.grow(inside, 20, 10), Err(PoolError::Exhausted));
        assert!(pool.contains(inside));
        assert_eq!(pool.free_slots(), 2);
        assert_eq!(
            pool.unreserved_free_slots(),
            1,
            "one free slot is in the reserved run"
        );
    }

    #[test]
    fn a_large_allocation_in_a_fragmented_pool_reserves_a_run_and_gets_it() {
        // 4 slots of 10 bytes: a b c d, then b and d freed: 20 bytes free, not contiguous.
        let mut pool = FixedPool::<_, 4>::new([0u8; 40], 10).unwrap();
        let ids: std::vec::Vec<_> = (0..4).map(|_| pool.allocate(10).unwrap()).collect();
        pool.deallocate(ids[1]).unwrap();
        pool.deallocate(ids[3]).unwrap();
        assert_eq!(pool.free_slots(), 2);
        assert_eq!(pool.allocate(20), Err(PoolError::Exhausted));
        assert!(pool.has_reservation());
        // A small allocation keeps out of the reserved run (slots 0..2 or 2..4).
        let small = pool.allocate(10).unwrap();
        let reserved_start = if small.index() == 1 { 2 } else { 0 };
        assert_eq!(
            pool.allocate(10),
            Err(PoolError::Exhausted),
            "the last free slot is reserved"
        );
        // The batch in the reserved run completes: the large allocation gets the run.
        let in_run = if reserved_start == 0 { ids[0] } else { ids[2] };
        pool.deallocate(in_run).unwrap();
        let large = pool.allocate(20).unwrap();
        assert_eq!((large.index(), large.count()), (reserved_start, 2));
        assert!(!pool.has_reservation());
    }

    #[test]
    fn an_unclaimed_reservation_lapses() {
        let mut pool = FixedPool::<_, 4>::new([0u8; 40], 10).unwrap();
        let ids: std::vec::Vec<_> = (0..4).map(|_| pool.allocate(10).unwrap()).collect();
        pool.deallocate(ids[1]).unwrap();
        pool.deallocate(ids[3]).unwrap();
        assert_eq!(pool.allocate(20), Err(PoolError::Exhausted));
        let small = pool.allocate(10).unwrap();
        let in_run = if small.index() == 1 { ids[2] } else { ids[0] };
        pool.deallocate(in_run).unwrap();
        // Nobody asks for the 2-slot run again: after 4 attempts small ones may use it.
        let mut got = None;
        for _ in 0..6 {
            if let Ok(id) = pool.allocate(10) {
                got = Some(id);
                break;
            }
        }
        assert!(got.is_some());
        assert!(!pool.has_reservation());
    }

    #[test]
    fn slot_count_follows_the_storage_up_to_slots() {
        let mut pool = FixedPool::<_, 8>::new(std::vec![0u8; 3 * 100 + 50], 100).unwrap();
        assert_eq!(pool.slot_count(), 3);
        assert_eq!(pool.capacity_bytes(), 300);
        assert!(matches!(
            pool.allocate(301),
            Err(PoolError::TooLarge { .. })
        ));
        let a = pool.allocate(200).unwrap();
        let _b = pool.allocate(100).unwrap();
        assert!(matches!(pool.allocate(1), Err(PoolError::Exhausted)));
        pool.deallocate(a).unwrap();
        assert_eq!(pool.free_slots(), 2);
        // More storage than the table holds: only its limit is used.
        let big = FixedPool::<_, 2>::new(std::vec![0u8; 10 * 100], 100).unwrap();
        assert_eq!(big.slot_count(), 2);
        assert!(FixedPool::<_, 2>::new(std::vec![0u8; 99], 100).is_err());
    }
    use proptest::prelude::*;
    use std::vec::Vec;

    #[test]
    fn allocates_contiguous_runs_and_detects_stale_handles() {
        let mut pool = FixedPool::<_, 4>::new([0u8; 64], 16).unwrap();
        let a = pool.allocate(1).unwrap();
        let b = pool.allocate(16).unwrap();
        let c = pool.allocate(17).unwrap(); // two slots
        assert_eq!((a.index(), b.index(), c.index()), (0, 1, 2));
        assert_eq!(c.count(), 2);
        assert_eq!(pool.free_slots(), 0);
        assert_eq!(pool.allocate(1), Err(PoolError::Exhausted));

        pool.buffer_mut(c).unwrap().fill(7);
        assert_eq!(pool.buffer(c).unwrap(), &[7u8; 32][..]);

        pool.deallocate(a).unwrap();
        pool.deallocate(b).unwrap();
        assert_eq!(pool.deallocate(a), Err(PoolError::StaleHandle));
        assert_eq!(pool.buffer(a).err(), Some(PoolError::StaleHandle));
        // Two free slots at 0..2: a two-slot run fits there.
        let d = pool.allocate(20).unwrap();
        assert_eq!((d.index(), d.count()), (0, 2));
        // The old one-slot handle at index 0 does not alias the new allocation.
        assert_ne!(d, a);
        assert!(!pool.contains(a));
        assert_eq!(
            pool.allocate(65),
            Err(PoolError::TooLarge {
                requested: 65,
                capacity: 64
            })
        );
    }

    #[test]
    fn buffer_pair_borrows_two_allocations() {
        let mut pool = FixedPool::<_, 4>::new([0u8; 40], 10).unwrap();
        let a = pool.allocate(10).unwrap();
        let b = pool.allocate(20).unwrap();
        pool.buffer_mut(a).unwrap().fill(3);
        let (read, write) = pool.buffer_pair(a, b).unwrap();
        assert_eq!(read, &[3u8; 10][..]);
        write.copy_from_slice(&[5u8; 20]);
        let (read, write) = pool.buffer_pair(b, a).unwrap();
        assert_eq!(read, &[5u8; 20][..]);
        assert_eq!(write.len(), 10);
        assert_eq!(pool.buffer_pair(a, a), Err(PoolError::StaleHandle));
        pool.deallocate(a).unwrap();
        assert_eq!(pool.buffer_pair(a, b), Err(PoolError::StaleHandle));
    }

    #[test]
    fn fragmentation_reports_exhausted() {
        let mut pool = FixedPool::<_, 4>::new([0u8; 40], 10).unwrap();
        let ids: Vec<_> = (0..4).map(|_| pool.allocate(10).unwrap()).collect();
        pool.deallocate(ids[0]).unwrap();
        pool.deallocate(ids[2]).unwrap();
        assert_eq!(pool.free_bytes(), 20);
        assert_eq!(pool.allocate(20), Err(PoolError::Exhausted));
        pool.deallocate(ids[1]).unwrap();
        let run = pool.allocate(30).unwrap();
        assert_eq!((run.index(), run.count()), (0, 3));
    }

    #[test]
    fn construction_checks() {
        assert_eq!(
            FixedPool::<_, 4>::new([0u8; 2], 3).err(),
            Some(PoolError::StorageTooSmall {
                needed: 3,
                available: 2
            })
        );
        assert_eq!(
            FixedPool::<_, 4>::new([0u8; 10], 0).err(),
            Some(PoolError::ZeroSlotSize)
        );
        let storage: &mut [u8] = &mut [0u8; 100];
        let pool = FixedPool::<_, 3>::new(storage, 30).unwrap();
        assert_eq!(pool.capacity_bytes(), 90);
    }

    proptest! {
        #[test]
        fn prop_never_exceeds_bound_or_leaks(ops in proptest::collection::vec((any::<bool>(), 0usize..50, any::<prop::sample::Index>()), 0..200)) {
            const SLOTS: usize = 8;
            const SIZE: usize = 10;
            let mut pool = FixedPool::<_, SLOTS>::new(std::vec![0u8; SLOTS * SIZE], SIZE).unwrap();
            let mut live: Vec<SlotId> = Vec::new();
            for (alloc, len, pick) in ops {
                if alloc || live.is_empty() {
                    match pool.allocate(len) {
                        Ok(id) => {
                            prop_assert!(id.count() * SIZE >= len.max(1));
                            prop_assert_eq!(pool.buffer(id).unwrap().len(), id.count() * SIZE);
                            // No overlap with any live allocation.
                            for other in &live {
                                let (a, b) = (id.index()..id.index() + id.count(), other.index()..other.index() + other.count());
                                prop_assert!(a.end <= b.start || b.end <= a.start);
                            }
                            live.push(id);
                        }
                        Err(PoolError::Exhausted) => {
                            // Truly no run of that length (outside a run reserved for a
                            // larger allocation).
                            let mut used = [false; SLOTS];
                            for id in &live { for u in &mut used[id.index()..id.index() + id.count()] { *u = true; } }
                            let need = len.div_ceil(SIZE).max(1);
                            if let Some((start, count)) = pool.reserved_run() && need < count {
                                for u in &mut used[start..start + count] { *u = true; }
                            }
                            let fits = used.windows(need).any(|w| w.iter().all(|u| !u));
                            prop_assert!(!fits, "exhausted although a run of {need} was free");
                        }
                        Err(PoolError::TooLarge { .. }) => prop_assert!(len > SLOTS * SIZE),
                        Err(e) => prop_assert!(false, "unexpected {e:?}"),
                    }
                } else {
                    let id = live.swap_remove(pick.index(live.len()));
                    pool.deallocate(id).unwrap();
                    prop_assert_eq!(pool.deallocate(id), Err(PoolError::StaleHandle));
                }
                let used: usize = live.iter().map(|id| id.count()).sum();
                prop_assert_eq!(pool.used_slots(), used);
                prop_assert!(pool.used_slots() <= SLOTS);
                prop_assert_eq!(pool.free_bytes(), (SLOTS - used) * SIZE);
            }
            for id in live { pool.deallocate(id).unwrap(); }
            prop_assert_eq!(pool.free_slots(), SLOTS);
            prop_assert!(pool.allocate(SLOTS * SIZE).is_ok());
        }
    }
}
