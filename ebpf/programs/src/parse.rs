//! Bounds-checked reads from packet memory, in the form the verifier accepts
//! (katran `pckt_parsing.h`). Every read checks `data + offset + size <= end`.

use core::mem::size_of;

/// Returns a pointer to a `T` at `offset` bytes from `data`, or `None` when
/// it would run past `data_end`.
#[inline(always)]
pub fn ptr_at<T>(data: usize, data_end: usize, offset: usize) -> Option<*const T> {
    if data + offset + size_of::<T>() > data_end {
        return None;
    }
    Some((data + offset) as *const T)
}

/// Reads a `T` (unaligned) at `offset`, or `None` past the end.
#[inline(always)]
pub fn read_at<T: Copy>(data: usize, data_end: usize, offset: usize) -> Option<T> {
    // SAFETY: `ptr_at` checked that the whole `T` lies inside the packet.
    ptr_at::<T>(data, data_end, offset).map(|p| unsafe { p.read_unaligned() })
}
