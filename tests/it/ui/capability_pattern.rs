// A pattern is not a name: no ceiling ever allows `posts:*`, so the route would refuse everyone.
tower_agent_auth::capability!(pub EveryPost = "posts:*");

fn main() {}
