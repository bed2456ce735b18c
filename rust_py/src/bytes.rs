//! Python `bytes` objects written in place by the core: a reply is allocated once at its final
//! size and filled with the GIL released, with no intermediate buffer and no copy.

use std::ffi::{c_int, c_void};

use pyo3::exceptions::PyMemoryError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use sigmaserve_core::CoreError;

use crate::errors::PyCoreError;

/// A fresh `bytes` object whose contents are not written yet.
///
/// The only way to get the object is [`UninitBytes::fill`], which hands the whole buffer to a
/// filler and returns the object only if the filler succeeds; otherwise the object is dropped
/// unseen. So no Python code can observe unwritten memory, provided the filler writes every
/// byte when it returns `Ok` (the obligation of every caller).
pub(crate) struct UninitBytes<'py> {
    object: Bound<'py, PyBytes>,
    data: *mut u8,
    len: usize,
}

impl<'py> UninitBytes<'py> {
    /// Allocates `len` bytes (`MemoryError` when Python cannot).
    pub(crate) fn new(py: Python<'py>, len: usize) -> PyResult<UninitBytes<'py>> {
        let size = ffi::Py_ssize_t::try_from(len)
            .map_err(|_| PyMemoryError::new_err("reply too large"))?;
        // SAFETY: PyBytes_FromStringAndSize(NULL, n) returns a new reference to a bytes object
        // with n writable bytes (or NULL with an exception set); nothing else references it.
        unsafe {
            let ptr = ffi::PyBytes_FromStringAndSize(std::ptr::null(), size);
            let object = Bound::from_owned_ptr_or_err(py, ptr)?.cast_into_unchecked::<PyBytes>();
            let data = ffi::PyBytes_AsString(ptr).cast::<u8>();
            if data.is_null() {
                return Err(PyErr::fetch(py));
            }
            Ok(UninitBytes { object, data, len })
        }
    }

    /// Runs `fill` on the whole buffer (with the GIL released unless the work is `small`: the
    /// release costs more than small work) and returns the object. `fill` must write every
    /// byte when it returns `Ok`.
    pub(crate) fn fill<F>(self, small: bool, fill: F) -> PyResult<Bound<'py, PyBytes>>
    where
        F: FnOnce(&mut [u8]) -> Result<(), CoreError> + Send,
    {
        // SAFETY: `data` points at `len` bytes owned by `object`, which no other code can see
        // until this function returns it.
        let buf = unsafe { std::slice::from_raw_parts_mut(self.data, self.len) };
        let done = if small {
            fill(buf)
        } else {
            advise_huge(buf);
            self.object.py().detach(|| fill(buf))
        };
        done.map_err(PyCoreError::from)?;
        Ok(self.object)
    }
}

#[cfg(target_os = "linux")]
extern "C" {
    fn madvise(addr: *mut c_void, len: usize, advice: c_int) -> c_int;
}

/// Asks for transparent huge pages on a large fresh buffer (first-touch page faults are the
/// dominant cost of a new 64 MiB buffer); a hint, failures are ignored.
fn advise_huge(buf: &mut [u8]) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        const MADV_HUGEPAGE: c_int = 14;
        if buf.len() < 2 * HUGE {
            return;
        }
        let addr = buf.as_mut_ptr() as usize;
        let first = addr.div_ceil(HUGE) * HUGE;
        let last = (addr + buf.len()) / HUGE * HUGE;
        if last > first {
            // SAFETY: [first, last) lies inside `buf`, which we own; madvise only changes the
            // kernel's paging policy for it.
            unsafe {
                madvise(first as *mut c_void, last - first, MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = buf;
}

/// Protobuf's base-128 varint of `value`, appended to `out`.
pub(crate) fn put_varint(mut value: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (value & 0x7F) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}
