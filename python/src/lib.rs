//! The Python module `ko` (pyo3). The API lands with the Python issue (#5); until then this
//! crate only fixes its place in the workspace.
