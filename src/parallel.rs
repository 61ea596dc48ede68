//! Work on several items side by side (hosts, mostly: each one SSH session), with the results in
//! the items' order.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Run `work` on every item of `items`, `workers` at a time, keeping the items' order.
pub fn in_parallel<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    work: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, R)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..workers.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(item) = items.get(i) else { break };
                    let r = work(item);
                    results
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((i, r));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// The same with one worker per item, a panic in `work` becoming `panicked` for that item alone.
pub fn each<T: Sync, R: Send>(
    items: &[T],
    work: impl Fn(&T) -> R + Sync,
    panicked: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    in_parallel(items, items.len(), |item| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(item)))
            .unwrap_or_else(|_| panicked(item))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_items_order_whatever_the_workers() {
        let items: Vec<u64> = (0..50).collect();
        for workers in [0, 1, 3, 50, 100] {
            let out = in_parallel(&items, workers, |i| i * 2);
            assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        }
        assert!(in_parallel(&[] as &[u8], 4, |i| *i).is_empty());
    }

    #[test]
    fn a_panic_is_the_one_item_s_result() {
        let out = each(
            &[1, 2, 3],
            |i| {
                assert_ne!(*i, 2, "planted");
                Ok(*i)
            },
            |i| Err(format!("{i} panicked")),
        );
        assert_eq!(out, [Ok(1), Err("2 panicked".into()), Ok(3)]);
    }
}
