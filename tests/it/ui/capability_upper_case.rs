// Capability names are lower case: `Posts:Read` would never match a granted `posts:read`.
tower_agent_auth::capability!(pub ReadPosts = "Posts:Read");

fn main() {}
