//! One value per thread and type, kept between short-lived users of large buffers.
//!
//! A tape made for each training step, or a workspace made for each convenience call, would
//! allocate its megabytes afresh every time, and freed megabytes come back from the kernel as
//! new pages (page faults and zeroing: up to 1.9× the step they serve). Such objects leave their
//! buffers here when they are done, and the next one on the same thread starts from them.

use std::any::Any;
use std::cell::RefCell;

thread_local! {
    static SLOTS: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
}

/// The value of type `V` this thread keeps, taken out; `None` if there is none.
pub(crate) fn take<V: 'static>() -> Option<V> {
    let taken = SLOTS.try_with(|s| {
        let mut s = s.try_borrow_mut().ok()?;
        let i = s.iter().position(|b| b.is::<V>())?;
        Some(s.swap_remove(i))
    });
    taken.ok().flatten().and_then(|b| b.downcast::<V>().ok()).map(|b| *b)
}

/// Keeps `v` for the next [`take`] of its type on this thread, in place of any kept one. (During
/// thread teardown, or if the slots are in use, `v` is simply dropped.)
pub(crate) fn keep<V: 'static>(v: V) {
    let old = SLOTS.try_with(|s| {
        let mut s = s.try_borrow_mut().ok()?;
        let old = s.iter().position(|b| b.is::<V>()).map(|i| s.swap_remove(i));
        s.push(Box::new(v));
        old
    });
    drop(old); // outside the borrow: a kept value's own drop may use the slots
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_value_per_type_and_thread() {
        assert_eq!(take::<Vec<u8>>(), None);
        keep(vec![1u8]);
        keep(vec![2u8]);
        keep(7u32);
        std::thread::spawn(|| assert_eq!(take::<Vec<u8>>(), None)).join().unwrap();
        assert_eq!(take::<Vec<u8>>(), Some(vec![2]));
        assert_eq!(take::<Vec<u8>>(), None);
        assert_eq!(take::<u32>(), Some(7));
    }
}
