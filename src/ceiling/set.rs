//! A set of capability patterns.

use std::collections::BTreeSet;

use super::capability::{ancestors, matches_name};
use super::{Capability, CapabilityError};

/// A set of capability patterns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapabilitySet {
    exact: BTreeSet<Box<str>>,
    below: BTreeSet<Box<str>>,
    all: bool,
}

impl CapabilitySet {
    /// The empty set: matches nothing.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The set matching everything (`*`).
    pub fn everything() -> Self {
        Self {
            all: true,
            ..Self::default()
        }
    }

    /// Parses patterns, failing on the first invalid one.
    pub fn parse<I, S>(patterns: I) -> Result<Self, CapabilityError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        patterns
            .into_iter()
            .map(|p| Capability::parse(p.as_ref()))
            .collect()
    }

    /// Adds one pattern.
    pub fn insert(&mut self, capability: Capability) {
        match capability {
            Capability::Exact(name) => {
                self.exact.insert(name);
            }
            Capability::Below(prefix) => {
                self.below.insert(prefix);
            }
            Capability::All => self.all = true,
        }
    }

    /// True when the set has no pattern at all.
    pub fn is_empty(&self) -> bool {
        !self.all && self.exact.is_empty() && self.below.is_empty()
    }

    /// Whether some pattern of the set matches the capability `name`.
    ///
    /// `name` should be a capability name, not a pattern; [`Policy::allows`](super::Policy::allows) and
    /// [`CapabilityCeiling::allows`](super::CapabilityCeiling::allows) refuse anything that is not a valid name before asking.
    pub fn matches(&self, name: &str) -> bool {
        matches_name(
            name,
            self.all,
            |n| self.exact.contains(n),
            |p| self.below.contains(p),
        )
    }

    /// Whether everything `pattern` matches is matched by this set (pattern inclusion).
    pub fn covers(&self, pattern: &Capability) -> bool {
        match pattern {
            Capability::All => self.all,
            Capability::Exact(name) => self.matches(name),
            // `p:*` is covered by `*`, by `p:*` itself, or by `q:*` for an ancestor `q` of `p`.
            Capability::Below(prefix) => {
                self.all
                    || self.below.contains(prefix)
                    || ancestors(prefix).any(|p| self.below.contains(p))
            }
        }
    }

    /// Whether every pattern of `other` is covered by this set.
    pub fn covers_all(&self, other: &CapabilitySet) -> bool {
        other.iter().all(|pattern| self.covers(&pattern))
    }

    /// Every pattern of the set, `*` first, then `name:*` patterns, then exact names.
    pub fn iter(&self) -> impl Iterator<Item = Capability> + '_ {
        self.all
            .then_some(Capability::All)
            .into_iter()
            .chain(self.below.iter().map(|p| Capability::Below(p.clone())))
            .chain(self.exact.iter().map(|n| Capability::Exact(n.clone())))
    }

    /// The patterns as strings, e.g. for storage or a `scope` parameter.
    pub fn to_strings(&self) -> Vec<String> {
        self.iter().map(|c| c.to_string()).collect()
    }
}

impl FromIterator<Capability> for CapabilitySet {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> Self {
        let mut set = Self::default();
        for capability in iter {
            set.insert(capability);
        }
        set
    }
}
