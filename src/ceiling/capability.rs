//! One capability, or a pattern of them: the grammar.

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

pub(super) const MAX_CAPABILITY_LEN: usize = 128;

/// Whether `name` is a valid capability *name* (not a pattern): 1–128 bytes of segments of
/// `[a-z0-9_.-]` joined by `:`, so no `*`, no empty segment, no upper case.
///
/// This is the one rule for names: [`Capability::parse`] gives [`Capability::Exact`] exactly for
/// these strings, [`Policy::allows`](super::Policy::allows) refuses every other string, `RequireCapabilityLayer::try_new`
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
    /// The same rule as [`CapabilitySet::matches`](super::CapabilitySet::matches) on the set holding only this pattern.
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
pub(super) fn matches_name(
    name: &str,
    all: bool,
    exact: impl Fn(&str) -> bool,
    below: impl Fn(&str) -> bool,
) -> bool {
    all || exact(name) || ancestors(name).any(below)
}

/// The proper prefixes of `name` that end at a `:` with something after it: `a:b:c` → `a`,
/// `a:b`. (`posts:` has none, so it is not below `posts`.)
pub(super) fn ancestors(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices(':')
        .filter(move |&(at, _)| at + 1 < name.len())
        .map(move |(at, _)| &name[..at])
}
