"""Where work runs: in this process, on a local Dask cluster, or on an existing one.

The only module that imports dask. Results always come back in the order of the inputs, so the
outcome does not depend on how many workers did the work. A command opens one ``session`` for
all its parallel steps: a local cluster takes half a second to start and its workers import the
package again each time, and carving maps once per format (eight clusters per image otherwise).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, TypeVar

from logsalvage.errors import UsageError

T = TypeVar("T")
R = TypeVar("R")


@contextmanager
def _client(workers: int, scheduler: str | None):
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise UsageError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        try:
            yield client
        finally:
            client.close()
        return
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=40)
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


_SESSIONS: list[tuple[int, str | None, object]] = []  # (workers, scheduler, client) of the open sessions


def _check(workers: int) -> None:
    if workers < 1:
        raise UsageError("--workers must be at least 1")


@contextmanager
def session(workers: int = 1, scheduler: str | None = None):
    """Keep one Dask client for every ``map_ordered`` with these ``workers``/``scheduler`` inside
    the block (nested sessions with the same ones share it); in-process work needs none."""
    _check(workers)
    if (workers == 1 and scheduler is None) or _shared(workers, scheduler) is not None:
        yield
        return
    with _client(workers, scheduler) as client:
        _SESSIONS.append((workers, scheduler, client))
        try:
            yield
        finally:
            _SESSIONS.pop()


def _shared(workers: int, scheduler: str | None):
    for w, s, client in reversed(_SESSIONS):
        if (w, s) == (workers, scheduler):
            return client
    return None


def map_ordered(func: Callable[[T], R], items: Iterable[T], *, workers: int = 1,
                scheduler: str | None = None) -> Iterator[R]:
    """``func`` over ``items``; results yielded in input order as they become available."""
    items = list(items)
    _check(workers)
    if workers == 1 and scheduler is None:
        for item in items:
            yield func(item)
        return
    with session(workers, scheduler):
        client = _shared(workers, scheduler)
        futures = [client.submit(func, item, pure=False) for item in items]
        try:
            for fut in futures:
                yield fut.result()
        finally:
            for fut in futures:
                fut.cancel()
