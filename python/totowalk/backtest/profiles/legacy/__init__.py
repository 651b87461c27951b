"""The legacy profile: the classic loop's result rows, field names and values (docs/LEGACY_SEMANTICS.md)."""
