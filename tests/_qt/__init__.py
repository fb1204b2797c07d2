"""GUI tests (a package, so test module names may repeat those of the core tests)."""
