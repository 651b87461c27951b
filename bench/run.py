"""Benchmark harness entry script: the same as ``totowalk bench`` (see bench/README.md).

python bench/run.py W1 W2 micro            # markdown rows for bench/RESULTS.md
python bench/run.py W1-small --json        # CI smoke run, JSON
"""

import sys

from totowalk.commands.bench import main

if __name__ == "__main__":
    sys.exit(main())
