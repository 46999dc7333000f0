#![doc = include_str!("../../docs/ceiling.md")]

use std::sync::Arc;

mod capability;
mod policy;
mod set;
#[cfg(test)]
mod tests;

pub use capability::{Capability, CapabilityError, is_capability_name};
pub use policy::Policy;
pub use set::CapabilitySet;

/// Where a layer of a ceiling comes from, to explain a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LayerSource {
    /// The acting user's role in the host application.
    OwnerRole,
    /// The agent's own policy.
    AgentPolicy,
    /// The policy of the agent a thread-scoped child identity belongs to.
    ParentAgentPolicy,
    /// The capabilities the token was minted with.
    Token,
    /// The policy of an agent up the token's delegation chain (see [`crate::delegation`]).
    DelegatorAgentPolicy,
    /// The policy of the parent of an agent up the delegation chain, for a thread-scoped child.
    DelegatorParentAgentPolicy,
    /// The capabilities of a token up the delegation chain.
    DelegatorToken,
    /// The policy of the orchestrator agent that minted the task token.
    OrchestratorPolicy,
    /// The role of the person on whose behalf an orchestrator minted the task token.
    DelegatingUserRole,
}

/// The intersection of permission layers that bounds every check on a request.
///
/// It always contains the owner's role, so no principal is ever wider than its user.
#[derive(Debug, Clone)]
pub struct CapabilityCeiling {
    // Room for owner, agent, token and one parent in one allocation; a principal is built once
    // per resolution and shared behind an `Arc` after.
    layers: Vec<(Arc<Policy>, LayerSource)>,
}

impl CapabilityCeiling {
    /// A ceiling bounded by the acting user's role alone (what a session principal gets).
    pub fn new(owner_role: Arc<Policy>) -> Self {
        let mut layers = Vec::with_capacity(4);
        layers.push((owner_role, LayerSource::OwnerRole));
        Self { layers }
    }

    /// Adds a layer. The result is never wider than before.
    pub fn narrowed_by(mut self, source: LayerSource, policy: Arc<Policy>) -> Self {
        self.layers.push((policy, source));
        self
    }

    /// Whether every layer allows the capability `name` and none denies it.
    ///
    /// A string that is not a valid capability name (for example a pattern like `posts:*`) is
    /// never allowed.
    pub fn allows(&self, name: &str) -> bool {
        self.layers.iter().all(|(policy, _)| policy.allows(name))
    }

    /// Whether every layer allows everything `pattern` matches (see [`Policy::covers`]): what
    /// a delegated token may ask for. `posts:*` lies within a ceiling only if the ceiling
    /// allows all of it.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tower_agent_auth::ceiling::{Capability, CapabilityCeiling, CapabilitySet, LayerSource, Policy};
    ///
    /// let role = Arc::new(Policy::allow(CapabilitySet::parse(["posts:*"]).unwrap()));
    /// let token = Arc::new(Policy::allow(CapabilitySet::parse(["posts:read", "posts:drafts:*"]).unwrap()));
    /// let ceiling = CapabilityCeiling::new(role).narrowed_by(LayerSource::Token, token);
    /// assert!(ceiling.covers(&"posts:drafts:*".parse().unwrap()));
    /// assert!(!ceiling.covers(&"posts:*".parse().unwrap())); // only part of it
    /// ```
    pub fn covers(&self, pattern: &Capability) -> bool {
        self.layers.iter().all(|(policy, _)| policy.covers(pattern))
    }

    /// The patterns of `requested` this ceiling does not wholly allow, in the set's order.
    pub fn outside(&self, requested: &CapabilitySet) -> Vec<Capability> {
        requested
            .iter()
            .filter(|pattern| !self.covers(pattern))
            .collect()
    }

    /// The first layer that refuses `name`, if any.
    pub fn refused_by(&self, name: &str) -> Option<&LayerSource> {
        self.layers
            .iter()
            .find(|(policy, _)| !policy.allows(name))
            .map(|(_, source)| source)
    }

    /// The layers, owner role first.
    pub fn layers(&self) -> impl ExactSizeIterator<Item = (&LayerSource, &Policy)> {
        self.layers
            .iter()
            .map(|(policy, source)| (source, &**policy))
    }
}
