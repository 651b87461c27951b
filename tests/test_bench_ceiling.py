"""The bench's GEMM ceiling for a reduced precision is never below the float32 rate the same
forward also uses (a CPU without native bf16 would otherwise show rows above their ceiling)."""

import torch

from totowalk.benchmarks import session as session_module
from totowalk.benchmarks.session import BenchOptions, BenchSession


def _fake_ceiling(rates):
    def gemm_ceiling(device, dtype=torch.float32, **_):
        name = str(dtype).replace("torch.", "")
        return {"gflops": rates[name], "shape": [1, 1, 1], "dtype": name, "seconds": 1.0}

    return gemm_ceiling


def test_emulated_bf16_takes_the_float32_ceiling(monkeypatch):
    monkeypatch.setattr(session_module, "gemm_ceiling", _fake_ceiling({"bfloat16": 10.0, "float32": 80.0}))
    session = BenchSession(BenchOptions(device="cpu", precision="bf16"), log=lambda *_: None)
    assert session.ceiling["gflops"] == 80.0 and session.ceiling["dtype"] == "float32"
    assert "faster here than bfloat16" in session.ceiling["note"]


def test_native_bf16_keeps_its_own_ceiling(monkeypatch):
    monkeypatch.setattr(session_module, "gemm_ceiling", _fake_ceiling({"bfloat16": 200.0, "float32": 80.0}))
    session = BenchSession(BenchOptions(device="cpu", precision="bf16"), log=lambda *_: None)
    assert session.ceiling["gflops"] == 200.0 and "note" not in session.ceiling
