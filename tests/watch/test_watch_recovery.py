"""A watch that dies in the middle of a round — after it committed what a log gained, before it
recorded how far it read — and a new watch that finds the log grown meanwhile: the bytes already
in the case are not committed again, whatever the new read's boundaries."""

from __future__ import annotations

import io

import pytest

from logsalvage.config import parse_config
from logsalvage.store import CaseStore
from logsalvage.watch import rounds, run_round
from logsalvage.watch.alerts import AlertSink

LINES = [f'203.0.113.{i} - - [21/Jan/2017:10:00:{i:02d} +0000] "GET /index.php?page={i} HTTP/1.1" 200 900 "-" '
         '"Mozilla/5.0"' for i in range(1, 9)]


class Died(BaseException):
    """The process was killed here (a BaseException: nothing on the way catches it)."""


def _append(path, lines) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("".join(line + "\n" for line in lines))


def _config(access, tmp_path):
    return parse_config({"hosts": {"web01": {"timezone": "UTC"}},
                         "watch": {"paths": [{"glob": str(access), "host": "web01"}]}}, str(tmp_path / "case.yaml"))


def _raws(case) -> list[str]:
    with CaseStore(case, read_only=True) as store:
        return [r[0] for r in store.query("SELECT raw FROM events ORDER BY raw")]


def _die_before_saving_state(monkeypatch):
    def dying(*args, **kwargs):
        raise Died

    monkeypatch.setattr(rounds, "_save_state", dying)


@pytest.mark.parametrize("first_round", [True, False], ids=["first-round", "later-round"])
def test_grown_log_after_a_death_between_commit_and_state(tmp_path, monkeypatch, first_round):
    access = tmp_path / "access_log"
    config = _config(access, tmp_path)
    case = tmp_path / "case"
    _append(access, LINES[:2])
    if not first_round:  # a state to continue from: the death is in a later round
        run_round(case, config, AlertSink(io.StringIO()))
    _append(access, LINES[2:4])
    with monkeypatch.context() as m:
        _die_before_saving_state(m)
        with pytest.raises(Died):
            run_round(case, config, AlertSink(io.StringIO()))
    assert _raws(case) == sorted(LINES[:4])  # committed, but the state still says where it was before
    _append(access, LINES[4:6])  # written while no watch ran
    r = run_round(case, config, AlertSink(io.StringIO()))
    assert r.events == 2
    assert _raws(case) == sorted(LINES[:6])  # each line once
    _append(access, LINES[6:])
    assert run_round(case, config, AlertSink(io.StringIO())).events == 2
    assert _raws(case) == sorted(LINES)


def test_death_twice_in_a_row_still_reads_each_line_once(tmp_path, monkeypatch):
    access = tmp_path / "access_log"
    config = _config(access, tmp_path)
    case = tmp_path / "case"
    _append(access, LINES[:2])
    run_round(case, config, AlertSink(io.StringIO()))
    for lines in (LINES[2:4], LINES[4:6]):  # two pieces committed past the stored offset, one after the other
        _append(access, lines)
        with monkeypatch.context() as m:
            _die_before_saving_state(m)
            with pytest.raises(Died):
                run_round(case, config, AlertSink(io.StringIO()))
    _append(access, LINES[6:])
    assert run_round(case, config, AlertSink(io.StringIO())).events == 2
    assert _raws(case) == sorted(LINES)


def test_a_death_while_recording_the_state_keeps_the_old_state(tmp_path, monkeypatch):
    """The state row is replaced as one step: a death between removing the old row and writing the
    new one must not leave the log without a state (read again from its start by the next watch)."""
    access = tmp_path / "access_log"
    config = _config(access, tmp_path)
    case = tmp_path / "case"
    _append(access, LINES[:2])
    run_round(case, config, AlertSink(io.StringIO()))
    before = access.stat().st_size
    real = CaseStore.execute

    def dying(self, sql, params=()):
        if sql.lstrip().startswith("INSERT INTO watch_state"):
            raise Died
        return real(self, sql, params)

    with monkeypatch.context() as m:
        m.setattr(CaseStore, "execute", dying)
        with pytest.raises(Died):
            run_round(case, config, AlertSink(io.StringIO()))
    with CaseStore(case, read_only=True) as store:
        assert store.query('SELECT path, "offset" FROM watch_state') == [(str(access), before)]


def test_the_same_line_again_in_a_later_round_is_a_new_event(tmp_path):
    """Two rounds that read identical bytes at different places of a log (the same request twice in
    one second, a round boundary between them) are two pieces of the log, not a copy of one."""
    access = tmp_path / "access_log"
    config = _config(access, tmp_path)
    case = tmp_path / "case"
    for _ in range(3):
        _append(access, LINES[:1])
        run_round(case, config, AlertSink(io.StringIO()))
    assert _raws(case) == LINES[:1] * 3
    with CaseStore(case, read_only=True) as store:
        assert store.query("SELECT count(*) FROM source_copies") == [(0,)]
