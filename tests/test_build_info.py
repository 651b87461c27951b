import shutil

import totowalk as tw


def test_build_info_keys_and_types():
    info = tw.build_info()
    for key in ("version", "torch", "native", "cuda_compiled", "cuda_available", "triton", "default_device"):
        assert key in info
    assert info["version"] == tw.__version__
    assert isinstance(info["cuda_available"], bool)
    assert info["default_device"] in ("cpu", "cuda")


def test_native_module_imports():
    from totowalk import _C

    assert _C.__version__ == tw.__version__
    assert isinstance(_C.cuda_compiled(), bool)
    assert _C.cuda_device_count() >= 0


def test_cuda_compiled_when_toolkit_present_but_unavailable_without_device():
    import torch

    info = tw.build_info()
    if shutil.which("nvcc"):
        assert info["cuda_compiled"] is True
    if not torch.cuda.is_available():
        assert info["cuda_available"] is False and info["cuda_unavailable_reason"]


def test_info_command_prints_report(capsys):
    from totowalk.cli import main

    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "cuda_compiled" in out and "IBM" in out
