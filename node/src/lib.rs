//! The Node module `ko` (napi-rs). The API lands with the Node issue; until then this crate
//! only fixes its place in the workspace.
