"""The clean profile: the legacy strategy family with the defects of LEGACY_SEMANTICS §11 fixed,
out-of-sample fits, one cost rule and a stated fill model."""
