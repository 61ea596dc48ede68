//! The pure half of terroir: a checked document and its blueprint become a resolved platform, then
//! a rendered tree. Nothing here touches a target, the network or the user's files.

pub mod blueprint;
pub mod render;
pub mod resolve;
