//! Ownership of the opaque handles, typed in one place.
//!
//! * [`BoxHandle`]: owned by one pointer (`peernet_config`); created with
//!   `Box::into_raw`, freed once with `Box::from_raw`.
//! * [`ArcHandle`]: reference-counted (`peernet_node`); the pointer C holds is one
//!   strong count. Every export that uses the handle takes its own count for the
//!   duration of the call, so a blocking call on another thread keeps the memory alive
//!   while `peernet_node_free` runs; it then fails with `PEERNET_ERR_CLOSED`.

use std::sync::Arc;

use peernet_core::Error;

use crate::guard::invalid;

/// A handle owned by exactly one C pointer.
pub(crate) trait BoxHandle: Sized {
    /// Name in error messages.
    const NAME: &'static str;

    /// Hands ownership to C.
    fn into_ptr(self) -> *mut Self {
        Box::into_raw(Box::new(self))
    }

    /// Borrows a handle.
    ///
    /// # Safety
    /// `p` is NULL or came from `into_ptr` and has not been freed.
    unsafe fn borrow<'a>(p: *const Self) -> Result<&'a Self, Error> {
        if p.is_null() {
            return Err(invalid(format!("{} is NULL", Self::NAME)));
        }
        // SAFETY: live handle by the caller's contract.
        Ok(unsafe { &*p })
    }

    /// Borrows a handle mutably.
    ///
    /// # Safety
    /// As [`BoxHandle::borrow`], and no other thread uses it during the borrow.
    unsafe fn borrow_mut<'a>(p: *mut Self) -> Result<&'a mut Self, Error> {
        if p.is_null() {
            return Err(invalid(format!("{} is NULL", Self::NAME)));
        }
        // SAFETY: live and unaliased by the caller's contract.
        Ok(unsafe { &mut *p })
    }

    /// Frees a handle; NULL is a no-op.
    ///
    /// # Safety
    /// `p` is NULL or came from `into_ptr` and has not been freed.
    unsafe fn free(p: *mut Self) {
        if !p.is_null() {
            // SAFETY: came from Box::into_raw and is freed once, by the caller's contract.
            drop(unsafe { Box::from_raw(p) });
        }
    }
}

/// A reference-counted handle.
pub(crate) trait ArcHandle: Sized {
    /// Name in error messages.
    const NAME: &'static str;

    /// Hands one strong count to C.
    fn into_ptr(a: Arc<Self>) -> *mut Self {
        Arc::into_raw(a).cast_mut()
    }

    /// Takes a new strong count for the duration of a call.
    ///
    /// # Safety
    /// `p` is NULL or came from `into_ptr` and C's count has not been released yet
    /// (a call that started before `peernet_node_free` is fine: it holds its own count).
    unsafe fn acquire(p: *const Self) -> Result<Arc<Self>, Error> {
        if p.is_null() {
            return Err(invalid(format!("{} is NULL", Self::NAME)));
        }
        // SAFETY: `p` came from Arc::into_raw and its count is still held by C.
        unsafe {
            Arc::increment_strong_count(p);
            Ok(Arc::from_raw(p))
        }
    }

    /// Takes back C's strong count; NULL gives `None`.
    ///
    /// # Safety
    /// `p` is NULL or came from `into_ptr`, and is released only once.
    unsafe fn release(p: *mut Self) -> Option<Arc<Self>> {
        if p.is_null() {
            None
        } else {
            // SAFETY: came from Arc::into_raw; C gives its count back exactly once.
            Some(unsafe { Arc::from_raw(p.cast_const()) })
        }
    }
}
