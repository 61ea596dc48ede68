//! The platform's secrets: the local store beside the document (bare metal), and the Secrets
//! terroir keeps in a cluster (Kubernetes).

pub mod kubernetes;
pub mod rotation;
pub mod store;

pub use store::*;
