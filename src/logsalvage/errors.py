"""The one error root. Every error names what it is about (file, line, offset) in its message.

Exit codes (documented in the README):
  0  success
  1  other failure (an internal error, an I/O failure outside the evidence)
  2  usage or configuration error: a bad argument, a broken config, an unusable path
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


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
