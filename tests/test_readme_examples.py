"""The README's "Use it from your code" examples run as written (issue 34, item 4)."""

import re
import warnings
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _examples() -> list:
    text = README.read_text()
    section = text.split("### Use it from your code", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_section_has_the_three_examples():
    blocks = _examples()
    assert len(blocks) == 3
    assert "totowalk.compat.toto" in blocks[0] and "totowalk.compat.kronos" in blocks[1]
    assert "totowalk.compat.gluonts" in blocks[2]


@pytest.mark.parametrize("index", [0, 1, 2], ids=["toto-ts", "kronos", "gluonts"])
def test_an_example_runs(index, tmp_path, monkeypatch):
    code = _examples()[index]
    if "gluonts" in code:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # gluonts warns at import when orjson/ujson are absent
            pytest.importorskip("gluonts")
    monkeypatch.chdir(tmp_path)  # the Kronos example writes its random checkpoint here
    namespace = {}
    with warnings.catch_warnings():
        # gluonts warns at import (no orjson/ujson) and pandas about its Period use: not ours to fix
        warnings.simplefilter("ignore" if "gluonts" in code else "error")
        exec(compile(code, f"README example {index}", "exec"), namespace)
    if index == 0:
        assert tuple(namespace["forecast"].median.shape) == (2, 1, 8)
        assert tuple(namespace["forecast"].quantile(0.9).shape) == (2, 1, 8)
    elif index == 1:
        prediction = namespace["prediction"]
        assert len(prediction) == 5 and list(prediction.index) == list(namespace["future"])
        assert prediction["close"].notna().all()
    else:
        metrics = namespace["metrics"]
        assert len(metrics) == 1 and metrics.notna().all().all()
