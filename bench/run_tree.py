"""Run a benchmark script against another checkout's sources, in this venv, for side-by-side runs.

    git worktree add /tmp/old <commit>
    cmake -S /tmp/old -B /tmp/old/build_cpu -G Ninja -DTOTOWALK_CUDA=OFF -DCMAKE_BUILD_TYPE=Release \\
          -Dpybind11_DIR=$(python -m pybind11 --cmakedir) -DPython_EXECUTABLE=$(which python)
    cmake --build /tmp/old/build_cpu && cp /tmp/old/build_cpu/_C*.so /tmp/old/python/totowalk/
    python bench/run_tree.py /tmp/old bench/bench_strategies.py --simulations 250

The editable install's import hook would otherwise win over ``sys.path``: it is removed first, so
``import totowalk`` finds the other tree (its sources and its own compiled extension).
"""

from __future__ import annotations

import runpy
import sys


def main() -> None:
    if len(sys.argv) < 3:
        raise SystemExit("usage: python bench/run_tree.py TREE SCRIPT [ARGS...]")
    tree, script = sys.argv[1], sys.argv[2]
    sys.meta_path[:] = [
        f
        for f in sys.meta_path
        if "editable" not in type(f).__module__.lower() and "scikit" not in type(f).__name__.lower()
    ]
    sys.path.insert(0, f"{tree}/python")
    sys.argv = sys.argv[2:]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
