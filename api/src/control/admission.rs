//! Who gets a place among the control server's clients: a cap in all, a
//! cap per user, places kept for administrators, and the oldest
//! non-administrator's connection closed when an administrator finds every
//! place taken. Pure bookkeeping over identities the caller supplies (a SID
//! string on Windows), so it is tested on every system with made-up users.
//!
//! The Windows pipe server uses it (`pipe.rs`); the rules are the Unix
//! server's (`server/session.rs`, `Clients::take`), plus the eviction, which
//! a Unix server does not need because root's places can never be taken.

use std::collections::VecDeque;
use std::fmt::Display;

/// The caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Most connections in all.
    pub(crate) total: usize,
    /// Most connections of one non-administrator.
    pub(crate) per_user: usize,
    /// Of `total`, how many only administrators may take.
    pub(crate) admin_places: usize,
}

/// One place taken: its number, who holds it, and the caller's handle to
/// it (what closes the connection when it is evicted).
#[derive(Debug)]
struct Place<K, T> {
    id: u64,
    who: K,
    admin: bool,
    handle: T,
}

/// A place given: its number (for [`Admission::release`]) and, when an
/// administrator took the place of the oldest non-administrator, that
/// connection's handle, for the caller to close.
#[derive(Debug)]
pub(crate) struct Admitted<T> {
    /// The number to release the place with.
    pub(crate) id: u64,
    /// The connection evicted to make room, if any.
    pub(crate) evicted: Option<T>,
}

/// The places taken, oldest first.
#[derive(Debug)]
pub(crate) struct Admission<K, T> {
    limits: Limits,
    next: u64,
    places: VecDeque<Place<K, T>>,
}

impl<K: Eq + Display, T> Admission<K, T> {
    /// No place taken yet.
    pub(crate) fn new(limits: Limits) -> Self {
        Admission {
            limits,
            next: 0,
            places: VecDeque::new(),
        }
    }

    /// How many places are taken.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.places.len()
    }

    /// A place for `who` (an administrator or not), holding `handle`; or
    /// why not, as a message for the client. An administrator may take any
    /// place, and when none is free, the oldest non-administrator's;
    /// another user at most `per_user`, and only while `admin_places` stay
    /// free.
    pub(crate) fn admit(&mut self, who: K, admin: bool, handle: T) -> Result<Admitted<T>, String> {
        let l = self.limits;
        let taken = self.places.len();
        let mut evicted = None;
        if admin {
            if taken >= l.total {
                let Some(oldest) = self.places.iter().position(|p| !p.admin) else {
                    return Err(format!(
                        "the daemon is serving {taken} administrators' clients already: close one and try again"
                    ));
                };
                evicted = self.places.remove(oldest).map(|p| p.handle);
            }
        } else {
            let mine = self.places.iter().filter(|p| p.who == who).count();
            if mine >= l.per_user {
                return Err(format!(
                    "{who} has {mine} connections to the daemon open already (at most {} per user): close one and try again",
                    l.per_user
                ));
            }
            if taken >= l.total.saturating_sub(l.admin_places) {
                return Err(format!(
                    "the daemon is serving {taken} clients already (the last {} places are kept for administrators): try again in a moment, or as an administrator",
                    l.admin_places
                ));
            }
        }
        let id = self.next;
        self.next = self.next.wrapping_add(1);
        self.places.push_back(Place {
            id,
            who,
            admin,
            handle,
        });
        Ok(Admitted { id, evicted })
    }

    /// Gives place `id` back (a connection that ended); nothing if it was
    /// evicted already.
    pub(crate) fn release(&mut self, id: u64) {
        if let Some(i) = self.places.iter().position(|p| p.id == id) {
            self.places.remove(i);
        }
    }

    /// Takes every handle out (at shutdown), leaving no place taken.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.places.drain(..).map(|p| p.handle)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const LIMITS: Limits = Limits {
        total: 6,
        per_user: 2,
        admin_places: 2,
    };

    /// A made-up user's SID.
    fn user(n: u32) -> String {
        format!("S-1-5-21-1-2-3-{n}")
    }

    const ADMIN: &str = "S-1-5-18";

    #[test]
    fn a_user_is_capped_and_others_still_get_in() {
        let mut a = Admission::new(LIMITS);
        for i in 0..2 {
            a.admit(user(1001), false, i).unwrap();
        }
        let e = a.admit(user(1001), false, 9).unwrap_err();
        assert!(
            e.contains("S-1-5-21-1-2-3-1001 has 2 connections") && e.contains("at most 2"),
            "{e}"
        );
        a.admit(user(1002), false, 2).unwrap();
        assert_eq!(a.len(), 3);
    }

    #[test]
    fn the_last_places_are_for_administrators() {
        let mut a = Admission::new(LIMITS);
        for n in 0..4 {
            a.admit(user(1000 + n), false, n).unwrap();
        }
        let e = a.admit(user(2000), false, 9).unwrap_err();
        assert!(e.contains("kept for administrators"), "{e}");
        for n in 0..2 {
            let got = a.admit(ADMIN.to_string(), true, 10 + n).unwrap();
            assert!(got.evicted.is_none(), "a free place was there");
        }
        assert_eq!(a.len(), 6);
    }

    #[test]
    fn an_administrator_finding_every_place_taken_evicts_the_oldest_user() {
        // Users fill what they may, administrators the rest, then another
        // administrator comes: the oldest user's connection (handle 0) goes.
        let mut a = Admission::new(LIMITS);
        for n in 0..4u32 {
            a.admit(user(1000 + n / 2), false, n).unwrap();
        }
        a.admit(ADMIN.to_string(), true, 4).unwrap();
        a.admit(ADMIN.to_string(), true, 5).unwrap();
        let got = a.admit(ADMIN.to_string(), true, 6).unwrap();
        assert_eq!(got.evicted, Some(0));
        assert_eq!(a.len(), 6);
        // The next one takes the next oldest.
        assert_eq!(
            a.admit(ADMIN.to_string(), true, 7).unwrap().evicted,
            Some(1)
        );
        // The evicted connection's own end gives back nothing twice.
        a.release(0);
        assert_eq!(a.len(), 6);
    }

    #[test]
    fn only_administrators_left_means_a_refusal_not_an_eviction() {
        let mut a = Admission::new(LIMITS);
        for n in 0..6 {
            a.admit(ADMIN.to_string(), true, n).unwrap();
        }
        let e = a.admit(ADMIN.to_string(), true, 9).unwrap_err();
        assert!(e.contains("6 administrators' clients"), "{e}");
        let e = a.admit(user(1), false, 9).unwrap_err();
        assert!(e.contains("kept for administrators"), "{e}");
    }

    #[test]
    fn a_released_place_is_free_again() {
        let mut a = Admission::new(LIMITS);
        let first = a.admit(user(7), false, 0).unwrap().id;
        a.admit(user(7), false, 1).unwrap();
        assert!(a.admit(user(7), false, 2).is_err());
        a.release(first);
        a.admit(user(7), false, 2).unwrap();
        assert_eq!(a.drain().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(a.len(), 0);
    }
}
