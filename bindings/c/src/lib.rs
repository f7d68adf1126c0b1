//! libko: the C and C++ face of ko-core. The API itself lands with the C/C++ bindings issue;
//! until then this crate only fixes its place in the workspace.
