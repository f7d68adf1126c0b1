//! `ko_published_list_t`: what `ko_build` returns, one `ko_published_t` per argument.

use std::ffi::{CString, c_char};

use ko_core::Published;

use crate::boundary::{c_string, infallible};

/// One built and published import path: its import path, its reference, and for a
/// multi-platform index each child image's reference by digest.
///
/// Owned by its `ko_published_list_t` (never freed on its own); immutable.
#[allow(non_camel_case_types)]
pub struct ko_published_t {
    import_path: CString,
    reference: CString,
    children: Vec<CString>,
}

/// The result of `ko_build`: one entry per import path argument, in argument order.
///
/// Owned by the caller, freed with `ko_published_list_delete` (which frees its entries and
/// their strings too). Immutable: it may be read from several threads at once.
#[allow(non_camel_case_types)]
pub struct ko_published_list_t {
    items: Vec<ko_published_t>,
}

impl ko_published_list_t {
    pub(crate) fn into_raw(published: Vec<Published>) -> *mut ko_published_list_t {
        let items = published
            .iter()
            .map(|p| ko_published_t {
                import_path: c_string(&p.import_path),
                reference: c_string(&p.reference),
                children: p.children.iter().map(|c| c_string(c)).collect(),
            })
            .collect();
        Box::into_raw(Box::new(ko_published_list_t { items }))
    }
}

/// How many entries `list` has (0 for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_published_list_len(list: *const ko_published_list_t) -> usize {
    // SAFETY: NULL or a live list, as the header requires.
    infallible(0, || unsafe { list.as_ref() }.map_or(0, |l| l.items.len()))
}

/// Entry `index` of `list`, or NULL when `index` is out of range (or `list` is NULL).
///
/// Ownership: borrowed from `list`; valid until `ko_published_list_delete(list)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_published_list_get(
    list: *const ko_published_list_t,
    index: usize,
) -> *const ko_published_t {
    infallible(std::ptr::null(), || {
        // SAFETY: NULL or a live list, as the header requires.
        unsafe { list.as_ref() }.and_then(|l| l.items.get(index)).map_or(std::ptr::null(), |p| p as *const _)
    })
}

/// The fully qualified import path that was built (`example.com/app/cmd/hello`); NULL for NULL.
///
/// Ownership: borrowed from the list holding `published`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_published_import_path(published: *const ko_published_t) -> *const c_char {
    // SAFETY: NULL or an entry of a live list, as the header requires.
    infallible(std::ptr::null(), || unsafe { published.as_ref() }.map_or(std::ptr::null(), |p| p.import_path.as_ptr()))
}

/// The reference to use the image by (`repo@sha256:...`, `repo:tag@sha256:...`, or `repo:tag` with
/// tag-only); NULL for NULL.
///
/// Ownership: borrowed from the list holding `published`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_published_reference(published: *const ko_published_t) -> *const c_char {
    // SAFETY: NULL or an entry of a live list, as the header requires.
    infallible(std::ptr::null(), || unsafe { published.as_ref() }.map_or(std::ptr::null(), |p| p.reference.as_ptr()))
}

/// How many child images an index has (0 for a single image, or NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_published_children_len(published: *const ko_published_t) -> usize {
    // SAFETY: NULL or an entry of a live list, as the header requires.
    infallible(0, || unsafe { published.as_ref() }.map_or(0, |p| p.children.len()))
}

/// Child image `index`'s reference by digest (`repo@sha256:...`), or NULL when out of range.
///
/// Ownership: borrowed from the list holding `published`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_published_child(published: *const ko_published_t, index: usize) -> *const c_char {
    infallible(std::ptr::null(), || {
        // SAFETY: NULL or an entry of a live list, as the header requires.
        unsafe { published.as_ref() }.and_then(|p| p.children.get(index)).map_or(std::ptr::null(), |c| c.as_ptr())
    })
}

/// Frees a list with its entries and their strings. NULL is allowed (and does nothing).
///
/// Ownership: takes `list`; neither it nor anything borrowed from it may be used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ko_published_list_delete(list: *mut ko_published_list_t) {
    infallible((), || {
        if !list.is_null() {
            // SAFETY: a list from `ko_build`, not yet deleted, as the header requires.
            drop(unsafe { Box::from_raw(list) });
        }
    })
}
