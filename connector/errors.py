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


class MissingPropertiesError(ConfigError):
    """The CRM lacks properties we write. `missing` names them; `remedy` says what to do
    (`leadscore init-properties` on HubSpot). A dry run notes it and goes on: it writes
    nothing."""

    def __init__(
        self, message: str, missing: list[str], remedy: str, dry_note: str | None = None
    ) -> None:
        super().__init__(message)
        self.missing = missing
        self.remedy = remedy
        self.dry_note = dry_note  # what a dry run notes instead of "lacks N properties"


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


class UnreachableError(RetryableError):
    """The CRM's host did not answer (connection refused, DNS, TLS, timeout, dropped
    connection). Retried like any transient failure; when the attempts run out the run stops
    with its own exit code, so a wrong URL or a network outage is not taken for bad data."""

    exit_code = 7


# Every exit code a command uses, in one place (README and `--help` list these).
EXIT_CODES: dict[int, str] = {
    0: "done",
    1: "bad input records or dead letters, a failed run, no state DB, unknown contact",
    2: "bad usage or configuration (settings, model file, missing properties, state path)",
    3: "stopped cleanly, committed work kept (calibrate: too little data to suggest)",
    4: "daily API quota reached (the next run resumes)",
    5: "token refused by the CRM (401/403; a missing token is 2)",
    6: "state DB unusable (corrupt, locked, from a newer leadscore)",
    7: "CRM unreachable (connection refused, DNS, TLS, timeout)",
    130: "interrupted (Ctrl-C; a backfill resumes when run again)",
}
