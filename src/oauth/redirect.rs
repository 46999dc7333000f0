//! Redirect URIs: what a client may be sent back to.
