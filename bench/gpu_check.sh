#!/usr/bin/env bash
# GPU check for totowalk, in one go, within ~8 minutes on a lent H100/H200 (no network). The rows
# the open issues wait for come first, so a step the budget cuts off is one that matters least:
#   1. build and install the extension with CUDA (pip, no build isolation, no deps; a failed CUDA
#      build falls back to the CPU-only extension, then to python/ without _C),
#   2. the CUDA-marked tests, and the exact statistics' and scores' Triton kernels against the host
#      loop compiled for this card (issue 35: to 1e-9),
#   3. the harness's W2 and W1 rows in fp16, the clean profile (exact statistics on the card) beside
#      legacy and the forecast's GEMM share (issues 31 and 35: W2 clean <= 1.1x legacy, whole <= 1.3x
#      its forecast, W1 <= 0.025 s), the exact statistics and scores of 24,576 rows on the card
#      against the host loop (issue 35: <= 5 ms; issue 29: scores <= 10 % of W2's forecast), a
#      profile of W2's forecast with its trace (issue 35), the whole W2 at four chunk sizes (issue
#      31), Kronos with 16 contexts batched against one at a time (issue 31: >= 5x), the 500-symbol
#      universe through the CLI (issue 33: whole <= 1.5x its forecast), Kronos in fp16 and W1's clean
#      Kronos backtest (issue 31), W2's host work and whole run in 8 worker processes (issue 31),
#   4. the engine/kernel/model/prefix-sharing/Kronos tests (8 processes where pytest-xdist is there),
#      then, if time is left, rows of closed issues: prefix sharing's W2/W3 rows, the strategy phase
#      on this host's cores, W1 without CUDA graphs, the microbenchmarks.
#   GPU_CHECK_OLD_TREE=DIR adds the W2 backtest of another tree's sources, alternating with this one.
#   GPU_CHECK_QUICK=1 stops after the build and step 3's first four rows.
#   GPU_CHECK_DRY=1 runs nothing: it writes each step's command line to $OUT/commands.txt (shell
#   quoted, one a line; tests/test_gpu_check.py parses each one with its script's own options).
#   Each step runs under its own timeout, and none is started once the budget (GPU_CHECK_BUDGET_S,
#   470 s) is spent.
# $OUT (default ./gpu_out) gets results.md (the summary and the rows for bench/RESULTS.md),
# trace.json.gz (the W2 forecast's profile) and logs.tar.gz (setup.log, tests.log, bench.log,
# harness.log, harness_*.md/json); the device tool brings back at most 8 files, so the details
# travel as one.
# Run from the repository root: bash bench/gpu_check.sh
set -u -o pipefail

OUT=${OUT:-./gpu_out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
PY=${PYTHON:-python3}
BUDGET_S=${GPU_CHECK_BUDGET_S:-470}   # stop starting new steps after this many seconds
DRY=${GPU_CHECK_DRY:-}
export PYTHONUNBUFFERED=1
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-16}
START=$(date +%s)
RESULTS="$OUT/results.md"
LOGS=$(mktemp -d)
trap 'tar czf "$OUT/logs.tar.gz" -C "$LOGS" . 2>/dev/null' EXIT

elapsed() { echo $(( $(date +%s) - START )); }
note() { echo "$*" | tee -a "$RESULTS"; }
# run_step NAME TIMEOUT LOG CMD...: run with a timeout unless the budget is spent; log its status.
run_step() {
  local name=$1 limit=$2 log=$3; shift 3
  if [[ -n "$DRY" ]]; then printf '%q ' "$@" >>"$OUT/commands.txt"; echo >>"$OUT/commands.txt"; return 0; fi
  local left=$(( BUDGET_S - $(elapsed) ))
  if (( left < 20 )); then note "- $name: SKIPPED (time budget spent)"; return 0; fi
  (( limit > left )) && limit=$left
  echo "===== $name (timeout ${limit}s, at $(elapsed)s) =====" >>"$log"
  timeout "$limit" "$@" >>"$log" 2>&1
  local rc=$?
  local status="ok"
  (( rc == 124 )) && status="TIMED OUT after ${limit}s"
  (( rc != 0 && rc != 124 )) && status="FAILED (exit $rc)"
  note "- $name: $status [$(elapsed)s]"
  return $rc
}

# CMake finds nvcc on PATH (or $CUDA_PATH/bin) only, not in /usr/local/cuda/bin by itself.
command -v nvcc >/dev/null 2>&1 || { [[ -x /usr/local/cuda/bin/nvcc ]] && export PATH="$PATH:/usr/local/cuda/bin"; }

: >"$RESULTS"
[[ -n "$DRY" ]] && : >"$OUT/commands.txt"
note "# totowalk GPU check ($(date -u +%Y-%m-%dT%H:%MZ))"
[[ -z "$DRY" ]] && {
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $PY -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'device', torch.cuda.get_device_name() if torch.cuda.is_available() else None)"
  nvcc --version | tail -1
  # the host phases' machine: its cores and numpy's BLAS (whose threads spin after each product)
  lscpu | grep -E "^(Model name|CPU\(s\)|Thread\(s\) per core|CPU max MHz)" | tr -s ' '
  $PY -c "import numpy as np; blas = np.show_config(mode='dicts')['Build Dependencies']['blas']; print('numpy', np.__version__, 'blas', blas.get('name'), blas.get('version'))"
} 2>&1 | tee -a "$LOGS/setup.log" | sed 's/^/    /' >>"$RESULTS"

# 1. Build: CUDA required (fail loudly rather than silently building the CPU-only module). This
# script runs once per lent machine, so a failed build is reported and the Python CUDA paths
# (graphs, Triton, benchmarks) still run: on the CPU-only extension, else from python/ with no _C.
export TOTOWALK_CUDA=ON
if ! run_step "build+install (pip, CUDA)" 240 "$LOGS/setup.log" \
  $PY -m pip install --no-build-isolation --no-deps --no-cache-dir .; then
  note "**CUDA BUILD FAILED** (last lines of setup.log):"
  tail -25 "$LOGS/setup.log" | sed 's/^/    /' | tee -a "$RESULTS"
  export TOTOWALK_CUDA=OFF
  if ! run_step "build+install (pip, CPU-only extension, fallback)" 120 "$LOGS/setup.log" \
    $PY -m pip install --no-build-isolation --no-deps --no-cache-dir -C build-dir=build/gpu_check_fallback .; then
    note "**fallback build failed too**: running the package from python/ without totowalk._C"
    export PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}"
  fi
fi
[[ -z "$DRY" ]] && {
  $PY -c "import totowalk as tw, json; info = tw.build_info(); print(json.dumps({k: info[k] for k in ('native', 'cuda_compiled', 'cuda_available', 'cuda_devices', 'triton_version')}))" \
    2>&1 | tee -a "$LOGS/setup.log" | sed 's/^/    build_info: /' >>"$RESULTS"
  $PY -c "from totowalk.engine.staging import native_status; print(native_status())" \
    2>&1 | tee -a "$LOGS/setup.log" | sed 's/^/    native_status: /' >>"$RESULTS"
}

# 2. Tests, against the installed build (python/ is not on sys.path, so the source tree is
# never imported instead).
# FutureWarnings (errors under pyproject's filterwarnings) only warn here: this machine's pandas and
# numpy are newer than CI's, and a deprecation must not hide a GPU result.
# pytest-benchmark (installed there) warns that xdist disables it, an error under filterwarnings.
PYTEST_OPTS=(-q -rs -p no:cacheprovider -p no:benchmark -W default::FutureWarning)
# Where pytest-xdist is there, the larger test files run in 8 processes: Triton compiles, not the
# GPU, are their cost.
PARALLEL=()
$PY -c 'import xdist' 2>/dev/null && PARALLEL=(-n 8)
[[ -z "${GPU_CHECK_QUICK:-}" ]] && run_step "pytest -m cuda" 120 "$LOGS/tests.log" $PY -m pytest tests -m cuda "${PYTEST_OPTS[@]}"
# The exact statistics' and scores' kernels against the host loop, compiled for this card (to 1e-9);
# each test's shapes compile their own kernels, in parallel where pytest-xdist is there.
run_step "exact statistics and scores kernel tests (Triton, compiled)" 120 "$LOGS/tests.log" \
  $PY -m pytest tests/test_exact_triton.py tests/test_scores_triton.py "${PYTEST_OPTS[@]}" "${PARALLEL[@]}"

# 3. The open issues' rows. The base preset with random weights is the W workloads' model; fp16 is
# the precision that passed the forecast-quality gate on this card. The clean rows compute their
# exact statistics and scores with the Triton kernels on the card (--statistics-backend triton
# --scores-backend triton; the defaults are the host's loops until a card has timed the kernels).
# Issues 31 and 35: W2 whole, clean beside legacy, each with its forecast phase; the forecast's
# GEMM share.
run_step "totowalk bench W2 --precision fp16, statistics and scores on the card" 180 "$LOGS/harness.log" \
  "$PY" -m totowalk.cli bench W2 --device cuda --repeats 3 --precision fp16 \
  --statistics-backend triton --scores-backend triton --official off --markdown-out "$LOGS/harness_W2_fp16.md" --json-out "$LOGS/harness_W2_fp16.json"
# Issues 31 and 35: W1 whole (clean and legacy) <= 0.025 s, fp16 with CUDA graphs.
run_step "totowalk bench W1 --precision fp16 --cuda-graphs, statistics and scores on the card" 120 "$LOGS/harness.log" \
  "$PY" -m totowalk.cli bench W1 --device cuda --repeats 5 --precision fp16 --cuda-graphs \
  --statistics-backend triton --scores-backend triton --official off \
  --markdown-out "$LOGS/harness_W1_fp16_graphs.md" --json-out "$LOGS/harness_W1_fp16_graphs.json"
# Issues 29 and 35: exact scores (CRPS, PIT, log score) and statistics of W2's count of contexts
# beside the forecast (fp16, its statistics on the card): the host loop and the Triton kernels on
# the card (scores <= 10 % of the forecast; statistics <= 5 ms). The torch path is left out: slow.
run_step "bench_scores.py --stats: exact scores and statistics, Triton kernels vs host loop (24,576 rows)" 120 \
  "$LOGS/bench.log" $PY bench/bench_scores.py --contexts 24576 --device cuda --model random:toto-open-base-1.0 \
  --repeats 2 --stats --precision fp16 --statistics-backend triton --skip-torch
# Issue 35: where the shared W2 forecast spends its time on the card and on the host (engine phases,
# kernels), in the backtest's form (walk-forward chunks); its Chrome trace comes back as trace.json.gz.
run_step "profile_forecast.py W2 fp16 (the whole W2, prefix-shared, walk-forward chunks)" 90 "$LOGS/bench.log" \
  $PY bench/profile_forecast.py --workload W2 --precision fp16 --w2-series 24 --w2-simulations 250 --rows 30 \
  --form walk-forward --trace "$OUT/trace.json.gz"
if [[ -z "${GPU_CHECK_QUICK:-}" ]]; then  # GPU_CHECK_QUICK=1: only the rows above
# Issues 31 and 35: the whole W2 at several chunk sizes (the next chunk's forecast hides this one's
# host work): whole / forecast per size and profile, to set the card's default chunk.
run_step "bench_chunks.py: W2 whole at 32,768 / 16,384 / 8,192 / 4,096 contexts per chunk, fp16" 120 "$LOGS/bench.log" \
  $PY bench/bench_chunks.py --preset toto-open-base-1.0 --device cuda --precision fp16 \
  --chunks 32768 16384 8192 4096 --profiles clean legacy --statistics-backend triton --scores-backend triton --repeats 2
# Issue 31: Kronos one-step forecasts per second with 16 contexts batched against one at a time
# (Kronos-base shape, random weights, classic parameters; bound >= 5x).
run_step "bench_kronos_batch.py: Kronos-base, 16 contexts batched vs one at a time" 60 "$LOGS/bench.log" \
  $PY bench/bench_kronos_batch.py --shape base --contexts 16 --pred-len 1 --repeats 3 --device cuda
# Issue 33: a 500-symbol universe, 250 simulations, clean, fp16, default flags, through the CLI (the
# chunks' forecasts overlap their strategies, evaluated in 8 host workers; the tables and plots are
# written by a second process during the run): whole / forecast, phases, peak RSS, folder size. The
# exact statistics and scores of its 512,000 forecasts run on the card (the host loops would be a
# second job as large as the forecast); with the host's only if that run fails.
if ! run_step "universe.py: 500 symbols x 250 simulations on the card, fp16, statistics and scores on the card" 200 \
  "$LOGS/bench.log" $PY bench/universe.py --symbols 500 --sims 250 -- --device cuda --precision fp16 \
  --no-progress --statistics-backend triton --scores-backend triton; then
  run_step "universe.py: 500 symbols x 250 simulations on the card, fp16, statistics and scores on the host" 200 \
    "$LOGS/bench.log" $PY bench/universe.py --symbols 500 --sims 250 -- --device cuda --precision fp16 --no-progress
fi
# Issue 31: Kronos in fp16 against fp32, and W1's clean Kronos backtest both ways.
run_step "bench_kronos_batch.py --precision fp16: Kronos-base, fp16 vs fp32, 16 contexts batched" 60 "$LOGS/bench.log" \
  $PY bench/bench_kronos_batch.py --shape base --contexts 16 --pred-len 1 --repeats 3 --precision fp16 --device cuda
run_step "bench_kronos_batch.py --backtest: W1's clean Kronos backtest, Kronos-base" 90 "$LOGS/bench.log" \
  $PY bench/bench_kronos_batch.py --shape base --backtest --sims 10 --contexts 2 --repeats 2 --device cuda
# Issues 31 and 35: the host work of W2 (strategies and tables, point forecasts) in one process
# against 8 worker processes on this host's cores (on 2 cores: no gain; the GIL keeps threads at 1.02x).
for profile in clean legacy; do
  run_step "bench_strategies.py --profile $profile --host-workers 8: W2's host work, 8 processes vs one" 60 \
    "$LOGS/bench.log" $PY bench/bench_strategies.py --profile "$profile" --simulations 250 --repeats 3 --host-workers 8
done
# Issue 33: the same universe with the host's work as before the many-core defaults (strategies in
# one process, the tables and plots written after the run), beside the default row above.
run_step "universe.py: 500 symbols x 250 simulations, --host-workers 0 --outputs-process off (the side by side)" 200 \
  "$LOGS/bench.log" $PY bench/universe.py --symbols 500 --sims 250 -- --device cuda --precision fp16 \
  --no-progress --statistics-backend triton --scores-backend triton --host-workers 0 --outputs-process off
# Issues 31 and 35: the whole W2 with its strategies in 8 worker processes, beside one process.
run_step "bench_chunks.py --host-workers 0 8: W2 whole, strategies in one process vs 8, fp16" 120 "$LOGS/bench.log" \
  $PY bench/bench_chunks.py --preset toto-open-base-1.0 --device cuda --precision fp16 \
  --chunks 16384 8192 --host-workers 0 8 --profiles clean legacy --statistics-backend triton --scores-backend triton --repeats 2

# 4. The GPU tests beyond the CUDA-marked ones (the fused rotary kernel bit for bit among them), after
# the rows (a slow Triton compile must not cost them), then closed issues' rows while time is left.
GPU_TESTS=$(ls tests/test_engine*.py tests/test_kernel*.py tests/test_model*.py tests/test_prefix*.py tests/test_kronos_engine.py 2>/dev/null | grep -v offline_compile)
if [[ -n "$GPU_TESTS" ]]; then
  run_step "engine/kernel/model/Kronos tests" 150 "$LOGS/tests.log" $PY -m pytest $GPU_TESTS "${PYTEST_OPTS[@]}" "${PARALLEL[@]}"
fi
# Prefix sharing (issue 16, closed): the whole W2 backtest, shared vs unshared, with its phases.
# --max-batch 32768: the backtest's default on CUDA (W2 in one engine call).
SHARING=(bench/bench_prefix_sharing.py --preset toto-open-base-1.0 --device cuda --max-batch 32768)
run_step "prefix sharing: W2 whole backtest fp16, shared vs unshared" 120 "$LOGS/bench.log" \
  $PY "${SHARING[@]}" W2 --backtest --precision fp16 --repeats 3
# Side by side with an older tree's sources (GPU_CHECK_OLD_TREE: a folder holding its python/ and
# bench/, e.g. copied from a worktree and carried; same installed extension, so its C++ must match):
# the whole W2 backtest alternating processes, old then new, GPU_CHECK_OLD_PAIRS times (default 1).
if [[ -n "${GPU_CHECK_OLD_TREE:-}" && -d "${GPU_CHECK_OLD_TREE}/python/totowalk" ]]; then
  SITE=$($PY -c "import totowalk, os; print(os.path.dirname(totowalk.__file__))")
  cp "$SITE"/_C*.so "$GPU_CHECK_OLD_TREE/python/totowalk/" 2>/dev/null
  for i in $(seq 1 "${GPU_CHECK_OLD_PAIRS:-1}"); do
    run_step "side by side ($i): W2 whole backtest fp16, tree $GPU_CHECK_OLD_TREE" 60 "$LOGS/bench.log" \
      $PY bench/run_tree.py "$GPU_CHECK_OLD_TREE" "$GPU_CHECK_OLD_TREE/bench/bench_prefix_sharing.py" \
      --preset toto-open-base-1.0 --device cuda --max-batch 8192 W2 --backtest --precision fp16 --repeats 3
    run_step "side by side ($i): W2 whole backtest fp16, this tree" 60 "$LOGS/bench.log" \
      $PY "${SHARING[@]}" W2 --backtest --precision fp16 --repeats 3
  done
fi
# The strategy phase on this host's CPU cores (the 2-core targets are CI's machine's); first how far
# it scales in threads of one process (on 2 cores: 1.02-1.04x, the GIL's), here with 8 groups.
run_step "bench_strategies.py --split 8: the clean host work in 8 threads against one after the other" 60 \
  "$LOGS/bench.log" $PY bench/bench_strategies.py --profile clean --simulations 250 --split 8 --threads 1 --repeats 3
for profile in legacy clean; do
  run_step "bench_strategies.py --profile $profile (6,000 simulations)" 60 "$LOGS/bench.log" \
    $PY bench/bench_strategies.py --profile "$profile" --simulations 250 --repeats 3 --cprofile 45
done
# OpenBLAS' threads spin after each product and take the cores the compiled grids want next (2-core
# machine: +50 ms when the statistics' products ran between chunks, bench/RESULTS.md): the legacy
# host work with 2 of its threads, against the row above with all of this host's.
OPENBLAS_NUM_THREADS=2 run_step "bench_strategies.py --profile legacy, OpenBLAS at 2 threads" 60 "$LOGS/bench.log" \
  $PY bench/bench_strategies.py --profile legacy --simulations 250 --repeats 3
run_step "prefix sharing: W3 forecast flatness fp32 (sampled), 1,000 vs 250 simulations" 90 "$LOGS/bench.log" \
  $PY "${SHARING[@]}" W3 --sims 250 1000 --shared-only --estimator sampled --repeats 3
for suite in W1 micro; do  # micro: the exact statistics on the host against the card, among others
  run_step "totowalk bench $suite" 90 "$LOGS/harness.log" \
    "$PY" -m totowalk.cli bench "$suite" --device cuda --repeats 3 --official off \
    --markdown-out "$LOGS/harness_$suite.md" --json-out "$LOGS/harness_$suite.json"
done
fi
[[ -n "$DRY" ]] && exit 0
grep -E "^(FAILED|ERROR)| (passed|failed|skipped|deselected|error)" "$LOGS/tests.log" | sed 's/^/    /' >>"$RESULTS"
note "## totowalk bench rows (paste into bench/RESULTS.md)"
for suite in W2_fp16 W1_fp16_graphs W1 micro; do
  [[ -f "$LOGS/harness_$suite.md" ]] && tail -n +3 "$LOGS/harness_$suite.md" >>"$RESULTS"
done
note "## benchmark output (last 25 lines of each)"
[[ -f "$LOGS/bench.log" ]] && $PY - "$LOGS/bench.log" >>"$RESULTS" <<'PYEOF'
import re, sys
sections, name = {}, None
for line in open(sys.argv[1], errors="replace"):
    header = re.match(r"===== (.+?) \(timeout", line)
    if header:
        name = header.group(1)
        sections[name] = []
    elif name:
        sections[name].append(line.rstrip())
for name, lines in sections.items():
    keep = 40 if name.startswith("profile_forecast") else 25
    print(f"### {name}\n```\n" + "\n".join(lines[-keep:]) + "\n```")
PYEOF
note "total: $(elapsed)s"
