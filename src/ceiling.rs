#![doc = include_str!("../docs/ceiling.md")]

use std::collections::BTreeSet;
use std::sync::Arc;

/// Why a capability or pattern string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CapabilityError {
    /// Not `segment(:segment)*` with optional trailing `:*`, segments of `[a-z0-9_.-]`, at
    /// most 128 bytes. Holds the refused text, cut to 64 characters.
    #[error(
        "invalid capability {0:?}: expected segments of [a-z0-9_.-] joined by ':', optionally ending in ':*'"
    )]
    Invalid(String),
}

const MAX_CAPABILITY_LEN: usize = 128;

/// Whether `name` is a valid capability *name* (not a pattern): 1–128 bytes of segments of
/// `[a-z0-9_.-]` joined by `:`, so no `*`, no empty segment, no upper case.
///
/// This is the one rule for names: [`Capability::parse`] gives [`Capability::Exact`] exactly for
/// these strings, [`Policy::allows`] refuses every other string, `RequireCapabilityLayer::try_new`
/// accepts exactly these, and the `capability!` macro checks it at compile time (a `const fn` for
/// that reason).
///
/// ```
/// use tower_agent_auth::ceiling::is_capability_name;
/// assert!(is_capability_name("posts:publish"));
/// assert!(!is_capability_name("posts:*")); // a pattern, not a name
/// assert!(!is_capability_name("Posts:Read"));
/// ```
pub const fn is_capability_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_CAPABILITY_LEN {
        return false;
    }
    // `previous_colon` starts true so that a leading ':' counts as an empty first segment.
    let mut previous_colon = true;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b':' {
            if previous_colon {
                return false;
            }
            previous_colon = true;
        } else if b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-') {
            previous_colon = false;
        } else {
            return false;
        }
        i += 1;
    }
    // A trailing ':' is an empty last segment.
    !previous_colon
}

/// A validated capability pattern: `name`, `name:*` or `*`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// Exactly this capability.
    Exact(Box<str>),
    /// Every capability strictly below this prefix (`posts:*` is `Below("posts")`).
    Below(Box<str>),
    /// Every capability.
    All,
}

impl Capability {
    /// Parses `posts:publish`, `posts:*` or `*`.
    pub fn parse(pattern: &str) -> Result<Self, CapabilityError> {
        if pattern == "*" {
            return Ok(Self::All);
        }
        if let Some(prefix) = pattern.strip_suffix(":*") {
            if is_capability_name(prefix) {
                return Ok(Self::Below(prefix.into()));
            }
        } else if is_capability_name(pattern) {
            return Ok(Self::Exact(pattern.into()));
        }
        // A refused pattern is echoed in errors: at most 64 characters of it, so a megabyte
        // string is not sent back whole (a valid one has at most 128 bytes).
        Err(CapabilityError::Invalid(crate::text::shortened(pattern)))
    }

    /// Whether this pattern matches the capability `name` (a name, not a pattern).
    ///
    /// The same rule as [`CapabilitySet::matches`] on the set holding only this pattern.
    pub fn matches(&self, name: &str) -> bool {
        let (all, exact, below) = match self {
            Self::Exact(exact) => (false, Some(&**exact), None),
            Self::Below(prefix) => (false, None, Some(&**prefix)),
            Self::All => (true, None, None),
        };
        matches_name(name, all, |n| exact == Some(n), |p| below == Some(p))
    }

    /// Whether some capability name is matched by both patterns: `posts:*` overlaps
    /// `posts:publish` and `posts:drafts:*`, but not `comments:read`.
    ///
    /// ```
    /// use tower_agent_auth::ceiling::Capability;
    /// let posts = Capability::parse("posts:*").unwrap();
    /// assert!(posts.overlaps(&Capability::parse("posts:publish").unwrap()));
    /// assert!(!posts.overlaps(&Capability::parse("comments:read").unwrap()));
    /// ```
    pub fn overlaps(&self, other: &Capability) -> bool {
        match (self, other) {
            // Every pattern matches some name, so `*` meets each.
            (Self::All, _) | (_, Self::All) => true,
            (Self::Exact(a), Self::Exact(b)) => a == b,
            (Self::Exact(name), below @ Self::Below(_))
            | (below @ Self::Below(_), Self::Exact(name)) => below.matches(name),
            (Self::Below(p), Self::Below(q)) => p == q || self.matches(q) || other.matches(p),
        }
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exact(name) => f.write_str(name),
            Self::Below(prefix) => write!(f, "{prefix}:*"),
            Self::All => f.write_str("*"),
        }
    }
}

impl std::str::FromStr for Capability {
    type Err = CapabilityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The one matching rule, shared by [`Capability::matches`] and [`CapabilitySet::matches`] so
/// that a pattern and a set holding it cannot disagree: `name` is matched by `*`, by an exact
/// pattern equal to it, or by `p:*` for one of its ancestors `p`.
///
/// Generic over the membership tests so the set's version stays a few `BTreeSet` lookups with
/// no allocation.
#[inline(always)]
fn matches_name(
    name: &str,
    all: bool,
    exact: impl Fn(&str) -> bool,
    below: impl Fn(&str) -> bool,
) -> bool {
    all || exact(name) || ancestors(name).any(below)
}

/// The proper prefixes of `name` that end at a `:` with something after it: `a:b:c` → `a`,
/// `a:b`. (`posts:` has none, so it is not below `posts`.)
fn ancestors(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices(':')
        .filter(move |&(at, _)| at + 1 < name.len())
        .map(move |(at, _)| &name[..at])
}

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
    /// `name` should be a capability name, not a pattern; [`Policy::allows`] and
    /// [`CapabilityCeiling::allows`] refuse anything that is not a valid name before asking.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn set(patterns: &[&str]) -> CapabilitySet {
        CapabilitySet::parse(patterns).unwrap()
    }

    #[test]
    fn wildcard_matches_strictly_below_at_segment_boundaries() {
        let s = set(&["posts:*"]);
        assert!(s.matches("posts:publish"));
        assert!(s.matches("posts:drafts:edit"));
        assert!(!s.matches("posts"));
        assert!(!s.matches("postsx:publish"));
        assert!(!s.matches("comments:read"));
    }

    #[test]
    fn invalid_patterns_are_refused() {
        for bad in [
            "",
            ":",
            "posts:",
            "Posts:read",
            "posts:*:x",
            "posts*",
            "a b",
            "**",
        ] {
            assert!(Capability::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn patterns_round_trip_through_display() {
        for p in ["*", "posts:*", "posts:publish", "manage_options"] {
            assert_eq!(Capability::parse(p).unwrap().to_string(), p);
        }
    }

    #[test]
    fn covers_is_pattern_inclusion() {
        let s = set(&["posts:*", "users:list"]);
        assert!(s.covers(&Capability::parse("posts:publish").unwrap()));
        assert!(s.covers(&Capability::parse("posts:*").unwrap()));
        assert!(s.covers(&Capability::parse("posts:drafts:*").unwrap()));
        assert!(!s.covers(&Capability::parse("users:*").unwrap()));
        assert!(!s.covers(&Capability::parse("*").unwrap()));
        assert!(set(&["*"]).covers(&Capability::All));
    }

    #[test]
    fn deny_wins_over_allow_in_the_same_layer() {
        let p = Policy::allow(set(&["posts:*"])).with_deny(set(&["posts:delete"]));
        assert!(p.allows("posts:publish"));
        assert!(!p.allows("posts:delete"));
    }

    #[test]
    fn patterns_are_never_allowed_as_names() {
        let ceiling = CapabilityCeiling::new(Arc::new(Policy::unrestricted()));
        assert!(ceiling.allows("posts:read"));
        assert!(!ceiling.allows("posts:*"));
        assert!(!ceiling.allows("*"));
    }

    #[test]
    fn a_single_exact_pattern_matches_only_its_name() {
        let c = Capability::parse("posts:read").unwrap();
        assert!(c.matches("posts:read"));
        assert!(!c.matches("posts:write"));
        assert!(!c.matches("posts:read:x"));
    }

    #[test]
    fn a_single_wildcard_pattern_matches_strictly_below() {
        let c = Capability::parse("posts:*").unwrap();
        assert!(c.matches("posts:read"));
        assert!(c.matches("posts:drafts:edit"));
        assert!(!c.matches("posts"));
        assert!(!c.matches("postsx:read"));
    }

    #[test]
    fn a_trailing_colon_is_not_below_its_prefix() {
        // `posts:` is not a name; neither a pattern nor a set may read it as `posts:<something>`.
        assert!(!Capability::parse("posts:*").unwrap().matches("posts:"));
        assert!(!set(&["posts:*"]).matches("posts:"));
    }

    #[test]
    fn star_matches_every_name() {
        assert!(Capability::All.matches("anything:at:all"));
    }

    #[test]
    fn empty_set_is_empty() {
        assert!(CapabilitySet::empty().is_empty());
        assert!(CapabilitySet::parse(Vec::<&str>::new()).unwrap().is_empty());
    }

    #[test]
    fn a_set_with_only_star_is_not_empty() {
        assert!(!CapabilitySet::everything().is_empty());
    }

    #[test]
    fn a_set_with_only_an_exact_name_is_not_empty() {
        assert!(!set(&["posts:read"]).is_empty());
    }

    #[test]
    fn a_set_with_only_a_wildcard_is_not_empty() {
        assert!(!set(&["posts:*"]).is_empty());
    }

    #[test]
    fn to_strings_lists_star_then_wildcards_then_names() {
        let s = set(&["users:list", "*", "posts:*"]);
        assert_eq!(s.to_strings(), ["*", "posts:*", "users:list"]);
        assert!(CapabilitySet::empty().to_strings().is_empty());
    }

    #[test]
    fn covers_all_holds_when_every_pattern_is_covered() {
        let s = set(&["posts:*", "users:list"]);
        assert!(s.covers_all(&set(&["posts:read", "posts:drafts:*", "users:list"])));
        assert!(s.covers_all(&CapabilitySet::empty()));
    }

    #[test]
    fn covers_all_fails_when_one_pattern_is_not_covered() {
        let s = set(&["posts:*", "users:list"]);
        assert!(!s.covers_all(&set(&["posts:read", "users:delete"])));
    }

    #[test]
    fn unrestricted_policy_allows_every_name_and_covers_everything() {
        let p = Policy::unrestricted();
        assert_eq!(p.allowed(), None);
        assert!(p.denied().is_empty());
        assert!(p.allows("posts:read"));
        assert!(p.covers_all(&CapabilitySet::everything()));
    }

    #[test]
    fn nothing_policy_allows_no_name_and_covers_only_the_empty_set() {
        let p = Policy::nothing();
        assert!(!p.allows("posts:read"));
        assert!(p.covers_all(&CapabilitySet::empty()));
        assert!(!p.covers_all(&set(&["posts:read"])));
    }

    #[test]
    fn policy_covers_all_uses_its_allow_list() {
        let p = Policy::allow(set(&["posts:*"]));
        assert!(p.covers_all(&set(&["posts:read"])));
        assert!(!p.covers_all(&set(&["users:list"])));
    }

    #[test]
    fn capability_names_are_segments_of_the_allowed_bytes() {
        for good in [
            "a",
            "posts:read",
            "a-b.c_d:0",
            &"a".repeat(MAX_CAPABILITY_LEN),
        ] {
            assert!(is_capability_name(good), "{good:?}");
        }
    }

    #[test]
    fn patterns_empty_segments_and_other_bytes_are_not_names() {
        for bad in [
            "",
            "*",
            "posts:*",
            "Posts:Read",
            ":a",
            "a:",
            "a::b",
            "a b",
            "é",
            &"a".repeat(MAX_CAPABILITY_LEN + 1),
        ] {
            assert!(!is_capability_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn policy_reports_its_allow_and_deny_lists() {
        let p = Policy::allow(set(&["posts:*"])).with_deny(set(&["posts:delete"]));
        assert_eq!(p.allowed(), Some(&set(&["posts:*"])));
        assert_eq!(p.denied(), &set(&["posts:delete"]));
    }

    #[test]
    fn refused_by_names_the_first_layer_that_refuses() {
        // The owner allows it, the token does not: the token is the one to blame.
        let ceiling = CapabilityCeiling::new(Arc::new(Policy::unrestricted()))
            .narrowed_by(LayerSource::Token, Arc::new(Policy::nothing()));
        assert_eq!(ceiling.refused_by("posts:read"), Some(&LayerSource::Token));
    }

    #[test]
    fn refused_by_is_none_when_every_layer_allows() {
        let ceiling = CapabilityCeiling::new(Arc::new(Policy::unrestricted()));
        assert_eq!(ceiling.refused_by("posts:read"), None);
    }
}
