"""The one error root. Every error names what it is about (file, line, offset) in its message.

Exit codes (documented in the README):
  0  success
  1  other failure (an internal error, an I/O failure outside the evidence)
  2  usage or configuration error: a bad argument, a broken config, an unusable path
  130 interrupted (Ctrl-C, SIGINT); 143 terminated (SIGTERM): finished sources are kept, the
      unfinished one is parsed again by the next run
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so it unwinds (staging cleaned, the open transaction
    rolled back) exactly as an interrupt does."""


def database_failure(exc: BaseException) -> tuple[int, str] | None:
    """Exit code and one-line message for an error raised by the case database engine (DuckDB),
    or None for any other exception. Recognised by module, so this module needs no engine import."""
    if isinstance(exc, RuntimeError) and str(exc).strip() == "Query interrupted":
        return EXIT_INTERRUPTED, "interrupted"  # DuckDB's client, when Ctrl-C lands inside some statements (COMMIT)
    if type(exc).__module__.split(".")[0] not in ("duckdb", "_duckdb"):
        return None
    name = type(exc).__name__
    if name == "InterruptException":
        return EXIT_INTERRUPTED, "interrupted"
    # a signal that lands while the engine reads a registered Arrow table comes back wrapped in
    # the engine's own error, naming the Python exception the signal raised
    if "failed: Terminated" in str(exc):
        return EXIT_TERMINATED, "terminated"
    if "failed: KeyboardInterrupt" in str(exc):
        return EXIT_INTERRUPTED, "interrupted"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else name
    text = str(exc)
    if "No space left" in text or "max_temp_directory_size" in text or ("disk" in text.lower() and "full" in text.lower()):
        return EXIT_FAILURE, ("the case database ran out of disk space (its files and its temporary directory "
                              f"CASE/tmp): free space or use a case directory on a larger disk, then run the "
                              f"command again to resume ({first})")
    return EXIT_FAILURE, f"case database: {first}"


class LogsalvageError(Exception):
    """Base of every error the tool raises on purpose."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, *, where: str | None = None):
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class UsageError(LogsalvageError):
    """A bad argument or an unusable path given by the user."""

    exit_code = EXIT_USAGE


class ConfigError(LogsalvageError):
    """A case config, format definition or rule that cannot be used."""

    exit_code = EXIT_USAGE


class EvidenceError(LogsalvageError):
    """Evidence that cannot be read at all (the parts that can are still read)."""

    exit_code = EXIT_FAILURE
