//! The core's timers: one deadline per timer id (setting an id again replaces
//! its deadline), and the earliest deadline for the driver to sleep on.

use std::collections::{BTreeSet, HashMap};

use strata_core::io::TimerId;

/// Pending timers, by id and by deadline (milliseconds on the driver's clock).
#[derive(Debug, Default)]
pub struct Timers {
    by_id: HashMap<TimerId, u64>,
    by_deadline: BTreeSet<(u64, TimerId)>,
}

impl Timers {
    /// Sets timer `id` to fire at `at_ms`, replacing its earlier deadline.
    pub fn set(&mut self, id: TimerId, at_ms: u64) {
        if let Some(old) = self.by_id.insert(id, at_ms) {
            self.by_deadline.remove(&(old, id));
        }
        self.by_deadline.insert((at_ms, id));
    }

    /// The earliest deadline, if any timer is pending.
    pub fn next_deadline(&self) -> Option<u64> {
        self.by_deadline.first().map(|&(at, _)| at)
    }

    /// Removes and returns the timers due at `now_ms`, earliest first.
    pub fn pop_due(&mut self, now_ms: u64) -> Vec<TimerId> {
        let mut due = Vec::new();
        while let Some(&(at, id)) = self.by_deadline.first() {
            if at > now_ms {
                break;
            }
            self.by_deadline.pop_first();
            self.by_id.remove(&id);
            due.push(id);
        }
        due
    }

    /// Pending timers.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// True when no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacing_a_timer_moves_its_deadline() {
        let mut t = Timers::default();
        t.set(1, 100);
        t.set(2, 50);
        t.set(1, 10);
        assert_eq!(t.next_deadline(), Some(10));
        assert_eq!(t.pop_due(49), vec![1]);
        assert_eq!(t.pop_due(49), Vec::<TimerId>::new());
        t.set(3, 50);
        assert_eq!(t.pop_due(1000), vec![2, 3]);
        assert!(t.is_empty());
        assert_eq!(t.next_deadline(), None);
    }
}
