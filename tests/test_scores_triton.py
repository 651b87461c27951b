"""The exact scores' Triton kernel equals the host loop (csrc/mixture_exact.cpp, score_row) to
1e-9, row for row: CRPS, PIT and log score of ordinary and extreme mixtures, one-component rows
and rows that must fail (runs in Triton's interpreter without a GPU, compiled on one)."""

from _triton import require_triton

require_triton()

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from totowalk.scoring.proper import mixture_scores  # noqa: E402

pytest.importorskip("totowalk._C")

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _case(rows: int, components: int, seed: int, df_range=(2.2, 6.0)):
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.ones(components), size=rows)
    df = np.exp(rng.uniform(np.log(df_range[0]), np.log(df_range[1]), size=(rows, components)))
    loc = rng.normal(0, 0.3, size=(rows, components))
    scale = np.exp(rng.normal(-1, 0.5, size=(rows, components)))
    affine_loc = rng.normal(100, 10, size=rows)
    affine_scale = np.exp(rng.normal(0, 1, size=rows))
    y = affine_loc + affine_scale * rng.standard_t(4, size=rows)
    return [torch.tensor(a, dtype=torch.float64) for a in (weights, df, loc, scale, affine_loc, affine_scale, y)]


def _agree(case):
    host = mixture_scores(*case, backend="native")
    kernel = mixture_scores(*(c.to(DEVICE) for c in case), backend="triton")
    for name in ("crps", "pit", "log_score"):
        want, got = host[name], kernel[name].cpu()
        assert got.shape == want.shape and got.dtype == torch.float64, name
        error = (got - want).abs() / want.abs().clamp_min(1.0 if name == "log_score" else 1e-300)
        assert (error <= 1e-9).all(), (name, float(error.max()))


def test_the_kernel_equals_the_host_loop_on_ordinary_mixtures():
    _agree(_case(5, 3, seed=0))  # Toto's df range; a block and a bit of rows


def test_the_kernel_equals_the_host_loop_at_extreme_degrees_of_freedom_and_scales():
    case = _case(4, 3, seed=1, df_range=(1.5, 1e3))
    case[0][0] = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)  # one component: the closed form
    case[0][1, 2] = 0.0  # a component without weight
    case[1][1, 2] = 0.5  # ... whose df would be invalid were it present
    case[2][2] = torch.tensor([-3.0, 0.0, 3.0], dtype=torch.float64)  # apart
    case[3][3] = torch.tensor([0.02, 1.0, 5.0], dtype=torch.float64)  # narrow next to wide
    case[6][3] = case[4][3] + 1e3 * case[5][3]  # far in the tail
    _agree(case)


def test_an_invalid_row_is_named():
    case = _case(3, 2, seed=2)
    case[3][2, 1] = -1.0  # a negative scale
    with pytest.raises(RuntimeError, match="row 2"):
        mixture_scores(*(c.to(DEVICE) for c in case), backend="triton")
    with pytest.raises(RuntimeError, match="row 2"):
        mixture_scores(*case, backend="native")
