"""--device / device= arguments: usable devices pass through, the rest fail with one clear line."""

import pytest
import torch

from totowalk import cli
from totowalk.devices import DeviceError, resolve_device
from totowalk.engine import ForecastEngine
from totowalk.model import TotoConfig, build_model

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")


def test_none_and_cpu_pass_through():
    assert resolve_device(None) is None
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("bad", ["tpu", "gpu0", "cuda:x"])
def test_unknown_names_are_errors(bad):
    with pytest.raises(DeviceError, match="device"):
        resolve_device(bad)


@no_cuda
def test_cuda_without_cuda_names_the_way_out():
    with pytest.raises(DeviceError, match="use device 'cpu'"):
        resolve_device("cuda")
    with pytest.raises(DeviceError, match="'cuda'"):
        ForecastEngine(build_model(TotoConfig.preset("toto-tiny"), seed=0), device="cuda")


@no_cuda
def test_cli_reports_an_unusable_device_without_a_traceback(capsys):
    assert cli.main(["forecast", "--dataset", "IBM", "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: device 'cuda'") and "Traceback" not in err


@pytest.mark.cuda
def test_cuda_index_out_of_range():
    assert resolve_device("cuda").type == "cuda"
    with pytest.raises(DeviceError, match="CUDA device"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")
