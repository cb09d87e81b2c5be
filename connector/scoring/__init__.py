"""The pure scoring core. Imports nothing that does I/O."""

from importlib.machinery import EXTENSION_SUFFIXES

from connector.scoring import engine
from connector.scoring.engine import (
    CompiledModel,
    compile_model,
    score,
    score_rows,
    score_rows_many,
)
from connector.scoring.lifecycle import decide_lifecycle

# True in a build that compiled the core with mypyc (setup.py, LEADSCORE_COMPILE=1; the Docker
# image): the same source as C extensions
COMPILED = engine.__file__.endswith(tuple(EXTENSION_SUFFIXES))
BUILD = "compiled by mypyc" if COMPILED else "pure Python"

__all__ = [
    "BUILD",
    "COMPILED",
    "CompiledModel",
    "compile_model",
    "decide_lifecycle",
    "score",
    "score_rows",
    "score_rows_many",
]
