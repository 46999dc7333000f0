//! A layer of the ceiling: what it allows and what it denies.

use super::{Capability, CapabilitySet, is_capability_name};

/// One layer of permission: an optional allow list and a deny list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    allow: Option<CapabilitySet>,
    deny: CapabilitySet,
}

impl Policy {
    /// A layer that narrows nothing (no allow list, no deny list).
    pub fn unrestricted() -> Self {
        Self::default()
    }

    /// A layer that allows exactly what `allow` matches.
    pub fn allow(allow: CapabilitySet) -> Self {
        Self {
            allow: Some(allow),
            deny: CapabilitySet::empty(),
        }
    }

    /// A layer that allows nothing.
    pub fn nothing() -> Self {
        Self::allow(CapabilitySet::empty())
    }

    /// Adds a deny list; denial wins over any allow.
    pub fn with_deny(mut self, deny: CapabilitySet) -> Self {
        self.deny = deny;
        self
    }

    /// The allow list; `None` means the layer does not narrow.
    pub fn allowed(&self) -> Option<&CapabilitySet> {
        self.allow.as_ref()
    }

    /// The deny list.
    pub fn denied(&self) -> &CapabilitySet {
        &self.deny
    }

    /// Whether this layer alone allows the capability `name`.
    pub fn allows(&self, name: &str) -> bool {
        is_capability_name(name)
            && self.allow.as_ref().is_none_or(|allow| allow.matches(name))
            && !self.deny.matches(name)
    }

    /// Whether this layer allows everything `pattern` matches: its allow list covers the
    /// pattern and no denied pattern overlaps it. `posts:*` is not covered by a layer that
    /// allows `posts:*` but denies `posts:delete`.
    ///
    /// ```
    /// use tower_agent_auth::ceiling::{Capability, CapabilitySet, Policy};
    /// let layer = Policy::allow(CapabilitySet::parse(["posts:*"]).unwrap())
    ///     .with_deny(CapabilitySet::parse(["posts:delete"]).unwrap());
    /// assert!(layer.covers(&Capability::parse("posts:publish").unwrap()));
    /// assert!(!layer.covers(&Capability::parse("posts:*").unwrap()));
    /// ```
    pub fn covers(&self, pattern: &Capability) -> bool {
        self.allow
            .as_ref()
            .is_none_or(|allow| allow.covers(pattern))
            && !self.deny.iter().any(|denied| denied.overlaps(pattern))
    }

    /// Whether this layer's allow list covers every pattern of `requested` (a layer without an
    /// allow list covers everything; the deny list is not consulted: see [`Policy::covers`]). Use it to refuse a token asking for more than its agent's
    /// policy grants.
    pub fn covers_all(&self, requested: &CapabilitySet) -> bool {
        self.allow
            .as_ref()
            .is_none_or(|allow| allow.covers_all(requested))
    }
}
