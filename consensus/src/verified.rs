//! `Verified<T>`: a value that passed its verification step. Only the verification functions of
//! this crate (`pbft::verify`) can build one, so a core that accepts only `Verified<...>` inputs
//! cannot be handed an unchecked peer message by mistake: forgetting a check is a type error.

use std::ops::Deref;

/// A value whose signatures, sender and sizes were checked. Cheap to clone when `T` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<T>(T);

impl<T> Verified<T> {
    /// Private to the crate: only verification code may vouch for a value.
    pub(crate) fn new_unchecked(value: T) -> Self {
        Self(value)
    }

    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Verified<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}
