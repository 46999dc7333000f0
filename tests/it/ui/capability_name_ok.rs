// A valid capability name compiles, and the type names it.
use tower_agent_auth::axum::CapabilityName;

tower_agent_auth::capability!(
    /// May read posts.
    pub ReadPosts = "posts:read"
);

fn main() {
    assert_eq!(ReadPosts::NAME, "posts:read");
}
