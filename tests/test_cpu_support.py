"""bf16/fp16 on a CPU that would emulate them: a warning naming the missing feature (issue 21, case 6)."""

from totowalk.cli import main
from totowalk.model import cpu_support
from totowalk.model.cpu_support import slow_precision_note


def test_note_names_the_missing_feature_only_where_it_is_missing():
    note = slow_precision_note("bf16", None, flags={"avx2", "fma"})
    assert "no avx512_bf16 or amx_bf16" in note and "slower than fp32" in note
    assert slow_precision_note("bf16", "cpu", flags={"avx2", "amx_bf16"}) is None
    assert "avx512_fp16" in slow_precision_note("fp16", "cpu", flags={"avx512_bf16"})
    assert slow_precision_note("bf16", "cuda", flags=set()) is None
    assert slow_precision_note("fp32", None, flags=set()) is None
    assert slow_precision_note("int8", None, flags=set()) is None


def test_cli_reports_it_as_one_warning_line(monkeypatch, capsys):
    monkeypatch.setattr(cpu_support, "cpu_flags", lambda: frozenset({"avx2"}))
    assert main(["forecast", "--dataset", "IBM", "--rows", "300", "--samples", "8", "--precision", "bf16"]) == 0
    err = capsys.readouterr().err
    assert "WARNING: precision 'bf16' on this CPU is emulated (no avx512_bf16 or amx_bf16)" in err
    assert "Warning:" not in err and "warnings.warn" not in err
