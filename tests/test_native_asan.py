"""Run tests/test_native_pack.py against an AddressSanitizer build of the extension.

A separate debug build (TOTOWALK_SANITIZE=ON, TOTOWALK_CUDA=OFF, -O1) is made with cmake in a
temporary directory, preloaded into a fresh interpreter with libasan and libstdc++ in LD_PRELOAD, and the pack tests run there. Any ASan report fails this test.
Leak detection is off: the interpreter's own allocations are never freed at exit.
"""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACK_TESTS = REPO / "tests" / "test_native_pack.py"


def _compiler_library(name):
    """Absolute path of a runtime library shipped with the C++ compiler, or None."""
    compiler = shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        return None
    found = subprocess.run([compiler, f"-print-file-name={name}"], capture_output=True, text=True).stdout.strip()
    return found if os.path.isabs(found) and os.path.exists(found) else None


def _preload():
    """libasan first (Python is not instrumented), then libstdc++: ASan resolves its
    __cxa_throw interceptor at start-up, so the C++ runtime must already be loaded then."""
    libs = [_compiler_library("libasan.so"), _compiler_library("libstdc++.so")]
    return ":".join(libs) if all(libs) else None


def _cmake():
    """cmake on PATH, or the one pip installed next to this interpreter."""
    beside = Path(sys.executable).with_name("cmake")
    return shutil.which("cmake") or (str(beside) if beside.exists() else None)


@pytest.fixture(scope="module")
def asan_extension(tmp_path_factory):
    """Path of a freshly built, ASan-instrumented totowalk._C (CPU only)."""
    try:
        import pybind11
    except ImportError:
        pybind11 = None
    cmake = _cmake()
    if pybind11 is None or cmake is None or _preload() is None:
        reason = "needs pybind11, cmake and a C++ compiler with AddressSanitizer"
        if os.environ.get("CI"):  # CI must run the sanitizer, never skip it quietly
            pytest.fail(f"{reason} (pybind11: {pybind11 is not None}, cmake: {cmake}, libasan: {_preload()})")
        pytest.skip(reason)
    build = tmp_path_factory.mktemp("asan_build")
    configure = [
        cmake,
        "-S",
        str(REPO),
        "-B",
        str(build),
        "-DCMAKE_BUILD_TYPE=Debug",
        "-DTOTOWALK_CUDA=OFF",
        "-DTOTOWALK_SANITIZE=ON",
        f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
        f"-DPython_EXECUTABLE={sys.executable}",
    ]
    for command in (configure, [cmake, "--build", str(build), "-j", "2"]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{command[:2]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    built = sorted(build.glob("_C*.so"))
    assert built, f"no _C*.so in {build}"
    return built[0]


def test_pack_tests_pass_under_address_sanitizer(asan_extension, tmp_path):
    # Load the instrumented module as totowalk._C before anything imports the installed one.
    driver = textwrap.dedent(f"""
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("totowalk._C", {str(asan_extension)!r})
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules["totowalk._C"] = module
        import totowalk
        totowalk._C = module
        from totowalk.engine import staging
        assert staging.compiled_module() is module and module.sanitized, "ASan build not in use"
        import pytest
        sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "--noconftest", "-rs",
                              {str(PACK_TESTS)!r}]))
    """)
    # pytest captures fd 2 inside the child, so reports go to files rather than stderr.
    log_prefix = tmp_path / "asan"
    env = dict(
        os.environ,
        LD_PRELOAD=_preload(),
        PYTHONUNBUFFERED="1",
        ASAN_OPTIONS=f"detect_leaks=0:halt_on_error=1:exitcode=86:log_path={log_prefix}",
    )
    done = subprocess.run(
        [sys.executable, "-c", driver], capture_output=True, text=True, cwd=REPO, env=env, timeout=600
    )
    output = done.stdout + done.stderr
    reports = "".join(p.read_text() for p in sorted(tmp_path.glob("asan*")))
    assert not reports, reports[-8000:]
    assert "AddressSanitizer" not in output, output[-6000:]
    assert done.returncode == 0, output[-6000:]
    assert " passed" in output and "skipped" not in output, output[-3000:]
