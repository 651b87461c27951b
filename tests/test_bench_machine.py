"""Benchmark rows made outside a git checkout say which totowalk made them (issue 21, case 11)."""

import totowalk
from totowalk import provenance as machine


def test_commit_outside_a_checkout_is_the_package_version(monkeypatch):
    monkeypatch.setattr(machine, "_git", lambda *args, **kwargs: None)
    assert machine.git_commit() == f"totowalk {totowalk.__version__} (no git checkout)"
