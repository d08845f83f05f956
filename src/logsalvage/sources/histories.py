"""Shell histories: which files are (a history is a text file like any other — its name decides,
as it decides for the shell that reads it), in which format, and whose they are (the home
directory holding them: ``home/alice/.bash_history`` is alice's, ``root/.bash_history`` root's)."""

from __future__ import annotations

from pathlib import PurePosixPath

# the names shells give their history files, and the format each writes
HISTORY_NAMES = {
    ".bash_history": "bash-history",
    ".ash_history": "bash-history",  # busybox ash: one command a line, like bash without HISTTIMEFORMAT
    ".zsh_history": "zsh-history",
    ".zhistory": "zsh-history",
    ".histfile": "zsh-history",
}
HISTORY_FORMATS = frozenset(HISTORY_NAMES.values())


def history_format(name: str) -> str | None:
    """The format of a file named ``name`` (compression suffix already removed) when shells write
    it; a copy kept beside it counts too ('.bash_history.1', '.bash_history-20171225', '.bak')."""
    for known, fmt in HISTORY_NAMES.items():
        if name == known or name.startswith(known) and name[len(known)] in ".-_~":
            return fmt
    return None


def history_owner(path: str) -> str | None:
    """The user whose home directory holds ``path`` (an evidence path or an archive member):
    '<…>/home/<user>/…' (or macOS's 'Users/<user>'), or root's '<…>/root/<file>'."""
    parts = PurePosixPath(path).parts
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] in ("home", "Users") and i + 2 <= len(parts) - 1:
            return parts[i + 1]
    if len(parts) >= 2 and parts[-2] == "root":
        return "root"
    return None


def history_fields(format_id: str | None, path: str) -> tuple[tuple[str, str], ...]:
    """What a shell history's place (its path in the evidence, or in its archive) says about its
    records: its owner as ``user_name``."""
    if format_id not in HISTORY_FORMATS:
        return ()
    owner = history_owner(path)
    return (("user_name", owner),) if owner else ()
