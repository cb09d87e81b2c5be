"""The pure scoring core. Imports nothing that does I/O."""

from connector.scoring.engine import CompiledModel, compile_model, score, score_rows
from connector.scoring.lifecycle import decide_lifecycle

__all__ = ["CompiledModel", "compile_model", "decide_lifecycle", "score", "score_rows"]
