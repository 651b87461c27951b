"""Single-simulation, literal implementations of the legacy rules: the references the package's
batched code is tested against (they live here, not in the package, because only tests call them)."""
