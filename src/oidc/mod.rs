//! Signing in with an identity provider: the protocol side, with no
//! knowledge of requests or cookies (the endpoints are
//! [`crate::signin`]'s `provider` step).
//!
//! Done by hand rather than with the `openidconnect` crate: the flow is
//! short (authorization code with PKCE S256, one token request, one ID
//! token check), and `openidconnect` 4 with its default features off still
//! adds 152 crates to the tree (a second RustCrypto digest stack, `rsa`,
//! `p256`/`p384`, `ed25519-dalek`, `chrono`, `rand` 0.8, its own HTTP client
//! abstraction). Here signatures are checked with `ring` (already in the
//! tree under rustls), HTTP goes through hyper and rustls, and the checks
//! are listed in [`id_token`]. `docs/providers.md` has the same account.
//!
//! - [`fetch`]: HTTP to providers, with a deadline, `https` only (plain
//!   `http` to loopback hosts).
//! - [`registry`]: discovery and keys per provider, cached and refreshed.
//! - [`id_token`]: the ID token's signature and claims.
//! - [`exchange`]: the code for tokens, and from them a verified address
//!   (the ID token, or GitHub's verified primary address).

pub mod exchange;
pub mod fetch;
pub mod id_token;
pub mod registry;

pub use exchange::{identify, Identified, IdentifyError};
pub use registry::Registry;
