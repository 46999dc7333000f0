//! What the MCP layer is configured with, and the mapping from a request to the capability it
//! needs.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use super::name;
use super::request::{PROMPTS_GET, RESOURCES_READ, TOOLS_CALL};
use crate::ceiling::is_capability_name;

/// What a request needs unless configured otherwise: `mcp:connect`.
pub const DEFAULT_BASELINE: &str = "mcp:connect";
/// The largest body the layer reads unless configured otherwise: 1 MiB.
pub const DEFAULT_MAX_BODY: usize = 1 << 20;

#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) baseline: Box<str>,
    /// Declared capabilities: of tools, prompts, resources (by [`Kind`] as an index).
    declared: [HashMap<String, Box<str>>; 3],
    pub(crate) max_body: usize,
    pub(crate) hide_uncallable_tools: bool,
    pub(crate) gate: Option<Arc<dyn super::approval::Gate>>,
    /// Whose each session is: shared by every service the layer builds.
    pub(crate) sessions: Arc<super::session::Sessions>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut f = f.debug_struct("McpLayer");
        f.field("baseline", &self.baseline)
            .field(
                "declared",
                &self.declared.iter().map(HashMap::len).sum::<usize>(),
            )
            .field("max_body", &self.max_body)
            .field("hide_uncallable_tools", &self.hide_uncallable_tools);
        f.field("supervised", &self.gate.is_some());
        f.finish()
    }
}

/// The kinds of MCP target a capability is declared for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Tool = 0,
    Prompt = 1,
    Resource = 2,
}

impl Kind {
    fn of(method: &str) -> Option<Self> {
        match method {
            TOOLS_CALL => Some(Self::Tool),
            PROMPTS_GET => Some(Self::Prompt),
            RESOURCES_READ => Some(Self::Resource),
            _ => None,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Self::Tool => "mcp:tools",
            Self::Prompt => "mcp:prompts",
            Self::Resource => "mcp:resources",
        }
    }
}

pub(crate) fn checked(capability: &str) -> Box<str> {
    assert!(
        is_capability_name(capability),
        "invalid capability name {capability:?}: expected segments of [a-z0-9_.-] joined by ':'"
    );
    capability.into()
}

impl Config {
    pub(crate) fn new() -> Self {
        Self {
            baseline: DEFAULT_BASELINE.into(),
            declared: Default::default(),
            max_body: DEFAULT_MAX_BODY,
            hide_uncallable_tools: false,
            gate: None,
            sessions: Arc::new(super::session::Sessions::new()),
        }
    }

    pub(crate) fn declare(&mut self, kind: Kind, name: String, capability: Box<str>) {
        self.declared[kind as usize].insert(name, capability);
    }

    pub(crate) fn capability_for<'a>(
        &'a self,
        method: &str,
        target: Option<&str>,
    ) -> Option<Cow<'a, str>> {
        let Some(kind) = Kind::of(method) else {
            return Some(Cow::Borrowed(&self.baseline));
        };
        let target = target?;
        if let Some(declared) = self.declared[kind as usize].get(target) {
            return Some(Cow::Borrowed(declared));
        }
        name::capability(kind.prefix(), target).map(Cow::Owned)
    }

    /// Whether the principal may call the tool `name` (for cutting `tools/list`).
    pub(crate) fn may_call(&self, principal: &crate::ExecutionPrincipal, name: &str) -> bool {
        self.capability_for(TOOLS_CALL, Some(name))
            .is_some_and(|capability| principal.can(&capability))
    }
}
