"""The build. Pure Python by default: `pip install .` and `pip install -e .` need no compiler.

`LEADSCORE_COMPILE=1` compiles the modules a full rescore spends its time in (`COMPILED`)
with mypyc: the same source, type-checked by `mypy --strict`, built into C extensions (the
core scores ~50% faster, a full rescore runs ~14% faster). The Docker image is built this way.
mypyc type-checks what it compiles, so the build needs mypy, the runtime dependencies, their
stubs and a C compiler, outside pip's isolated build environment (the Dockerfile's build stage):

    pip install 'mypy>=1.10,<2' 'setuptools>=70.1' wheel types-PyYAML types-requests .
    rm -rf build && LEADSCORE_COMPILE=1 pip wheel --no-build-isolation --no-deps -w dist .

`tests/test_compiled_build.py` runs the Dockerfile's command and the tests of those modules.
"""

from __future__ import annotations

import os

from setuptools import setup

# the full rescore's inner loop: the scoring core (with the account roll-up's scoring and the
# member parts a rescore records for it) and the JSON it reads. (Compiling the state
# store and the types too measured no faster, and their classes could no longer be patched.)
COMPILED = [
    "connector/byfields.py",
    "connector/fastjson.py",
    "connector/member.py",
    "connector/reason.py",
    "connector/scoring/accounts.py",
    "connector/scoring/engine.py",
    "connector/scoring/matchers.py",
    "connector/scoring/lifecycle.py",
    "connector/state/codec.py",
]

ext_modules = []
if os.environ.get("LEADSCORE_COMPILE") == "1":
    from mypyc.build import mypycify

    ext_modules = mypycify(COMPILED, opt_level="3")

setup(ext_modules=ext_modules)
