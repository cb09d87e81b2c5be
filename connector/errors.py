"""One exception root, with children named after what the caller should do."""

from __future__ import annotations


class ConnectorError(Exception):
    """Root of every error the project raises on purpose."""

    exit_code = 1


class ConfigError(ConnectorError):
    """Settings or model file are wrong: fix the file, nothing ran."""

    exit_code = 2


class ModelError(ConfigError):
    """The scoring model file is invalid. `problems` lists every error with its location."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: {len(problems)} problem(s): " + "; ".join(problems))


class InputError(ConnectorError):
    """One input record is bad: skip it, dead-letter it, carry on with the rest."""


class RetryableError(ConnectorError):
    """A transient failure (5xx, timeout, 429 ten-secondly, dropped connection): try again."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RecordError(ConnectorError):
    """The CRM rejected one record for good (validation, unknown property): dead-letter it."""


class StopRunError(ConnectorError):
    """Stop this run cleanly; committed work is kept and the next run resumes."""

    exit_code = 3


class QuotaExhaustedError(StopRunError):
    """The daily API quota is spent. The run stops; `resets_at` says when to come back."""

    exit_code = 4

    def __init__(self, message: str, resets_at: str | None = None) -> None:
        super().__init__(message)
        self.resets_at = resets_at


class AuthError(StopRunError):
    """Token missing, wrong or revoked (401/403): stop loudly, a human must act."""

    exit_code = 5
    category: str | None = None  # the CRM's error category (e.g. MISSING_SCOPES), when given


class StateError(ConnectorError):
    """The state DB is corrupt, locked or from a newer version."""

    exit_code = 6


# Every command's exit codes, one table (rendered into `leadscore --help` and the README).
EXIT_CODES: dict[int, str] = {
    0: "ok",
    1: "input: dead letters, bad records (the rest still ran), no state DB, unknown contact",
    2: "configuration or usage: settings, token missing, bad model file, bad option",
    3: "too little data (calibrate); a run stopped before its end",
    4: "daily API quota reached (the run stopped cleanly; the next one resumes)",
    5: "token refused by the CRM (401/403)",
    6: "state DB unusable (corrupt, locked, from a newer version)",
    7: "CRM unreachable (reserved)",
    130: "interrupted (Ctrl-C)",
}
