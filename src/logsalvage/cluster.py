"""Where work runs: in this process, on a local Dask cluster, or on an existing one.

The only module that imports dask. Results always come back in the order of the inputs, so the
outcome does not depend on how many workers did the work.
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


def map_ordered(func: Callable[[T], R], items: Iterable[T], *, workers: int = 1,
                scheduler: str | None = None) -> Iterator[R]:
    """``func`` over ``items``; results yielded in input order as they become available."""
    items = list(items)
    if workers < 1:
        raise UsageError("--workers must be at least 1")
    if workers == 1 and scheduler is None:
        for item in items:
            yield func(item)
        return
    with _client(workers, scheduler) as client:
        futures = [client.submit(func, item, pure=False) for item in items]
        try:
            for fut in futures:
                yield fut.result()
        finally:
            for fut in futures:
                fut.cancel()
