"""The kernel sets this machine does not pick by itself, against tests/reference.py.

csrc/cpu/dispatch.cpp chooses AVX-512, AVX2 or baseline kernels once, when the module loads, and
MLP_SIMD=avx2|baseline caps the choice. A machine with AVX-512 (CI's, the development VM) would
otherwise never run the AVX2 set, which most laptops use, nor the baseline one. Each set gets
the kernel, network and gradient tests in a fresh process: its own MLP_SIMD, and a check there
that the set loaded is the one asked for.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import mlp

HERE = os.path.dirname(os.path.abspath(__file__))
FILES = ["test_kernels.py", "test_network.py", "test_gradcheck.py"]

RUN = textwrap.dedent("""
    import sys
    import mlp
    chosen = mlp.build_info()["simd"]
    if chosen != sys.argv[1]:
        sys.exit(f"MLP_SIMD={sys.argv[1]} loaded the {chosen!r} kernels")
    import pytest
    sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", *sys.argv[2:]]))
""")


@pytest.mark.parametrize("level", ["avx2", "baseline"])
def test_kernels_and_networks_match_the_reference_with_each_kernel_set(level, tmp_path):
    if level == "avx2" and mlp.build_info()["simd"] not in ("avx512", "avx2"):
        pytest.skip("this CPU has no AVX2 and FMA")
    env = dict(os.environ, MLP_SIMD=level)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.dirname(os.path.dirname(mlp.__file__)),
                                                      env.get("PYTHONPATH")]))
    # cwd=tmp_path: `python -c` puts the working directory first on sys.path, and a source
    # checkout's mlp/ holds no compiled extension when mlp is installed elsewhere.
    args = [f"--basetemp={tmp_path / 'pytest'}", *(os.path.join(HERE, f) for f in FILES)]
    done = subprocess.run([sys.executable, "-c", RUN, level, *args],
                          capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, f"MLP_SIMD={level}:\n{done.stdout[-6000:]}\n{done.stderr[-3000:]}"
    assert " passed" in done.stdout and " failed" not in done.stdout
