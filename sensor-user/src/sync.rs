//! The agent's one policy for a poisoned lock: carry on with the data as the panicking thread
//! left it. Everything behind these locks (metric families, the EVE writer's buffers, an
//! output's spool and counters) is valid after any partial update, at worst a count or a line
//! short, and a sensor that keeps reporting beats one that stops because one thread panicked.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, recovering the guard when another thread panicked while holding it.
pub fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_poisoned_lock_still_gives_its_data() {
        let m = Arc::new(Mutex::new(1u32));
        let held = m.clone();
        let panicked = std::thread::spawn(move || {
            let mut g = held.lock().expect("first lock");
            *g = 2;
            panic!("poison it");
        })
        .join();
        assert!(panicked.is_err());
        assert!(m.is_poisoned());
        assert_eq!(*lock(&m), 2);
    }
}
