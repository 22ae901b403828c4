"""Where tasks run: in this process, on a LocalCluster started for the job, or on a running scheduler.

``--scheduler`` takes ``local`` (one worker per core), ``local:N`` (N workers) or ``tcp://HOST:PORT``;
no scheduler runs the same task functions in a loop here. Local workers are processes with one thread
each (dask's nanny also limits torch/BLAS to one thread per worker), so N workers use N cores.
``dask.distributed`` is imported here only, and only when a scheduler is asked for, so the CLI and
the single-process path never pay for it.

Task functions must be importable (module-level) and raise only errors that pickle: a worker's
exception travels back to the client, and one whose constructor takes several arguments would not.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from hepml_core.exceptions import ConfigError, HepmlError

__all__ = ["Scheduler", "SchedulerError", "parse_scheduler", "open_client", "run_tasks"]

_ACCEPTED = "use local, local:N (N worker processes here) or tcp://HOST:PORT (a running dask scheduler)"


class SchedulerError(HepmlError):
    """The Dask scheduler cannot be reached or started, or a worker died during the job."""


@dataclass(frozen=True)
class Scheduler:
    """A parsed ``--scheduler`` value.

    Attributes:
        kind: "process" (no scheduler: a loop in this process), "local" or "address".
        workers: number of local workers (``local`` only).
        address: ``tcp://HOST:PORT`` (``address`` only).
    """

    kind: Literal["process", "local", "address"]
    workers: int | None = None
    address: str | None = None

    def __str__(self) -> str:
        if self.kind == "local":
            return f"local:{self.workers}"
        return self.address if self.kind == "address" else "process"


def parse_scheduler(text: str | None) -> Scheduler:
    """Parse ``None``, ``local``, ``local:N`` or ``tcp://HOST:PORT``.

    Raises:
        ConfigError: anything else (the message lists the accepted forms).
    """
    if text is None or text == "":
        return Scheduler("process")
    text = str(text).strip()
    if text == "local":
        return Scheduler("local", workers=max(1, os.cpu_count() or 1))
    if text.startswith("local:"):
        count = text[len("local:"):]
        if not count.isdigit() or int(count) < 1:
            raise ConfigError(f"scheduler {text!r}: the number of workers must be an integer >= 1; {_ACCEPTED}")
        return Scheduler("local", workers=int(count))
    if text.startswith("tcp://"):
        host, _, port = text[len("tcp://"):].rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"scheduler {text!r} lacks a HOST:PORT after tcp://, e.g. tcp://10.0.0.5:8786")
        return Scheduler("address", address=text)
    raise ConfigError(f"scheduler {text!r} is not accepted; {_ACCEPTED}")


def _distributed() -> Any:
    try:
        import distributed
    except ImportError as err:  # an optional extra in other installs
        raise SchedulerError(
            "--scheduler needs dask.distributed, which is not installed; "
            "install it with: pip install 'dask[distributed]'"
        ) from err
    return distributed


@contextmanager
def open_client(scheduler: Scheduler | str | None, *, connect_timeout: float = 10.0) -> Iterator[Any]:
    """A ``distributed.Client`` for the scheduler (None for "process"), closed on exit.

    A ``local`` cluster is started here and shut down on exit; a ``tcp://`` scheduler is only
    connected to (its workers keep running).

    Args:
        scheduler: a Scheduler or its text form.
        connect_timeout: seconds to wait for a ``tcp://`` scheduler.

    Raises:
        ConfigError: a bad scheduler text.
        SchedulerError: the scheduler cannot be reached or the local cluster cannot start.
    """
    spec = scheduler if isinstance(scheduler, Scheduler) else parse_scheduler(scheduler)
    if spec.kind == "process":
        yield None
        return
    distributed = _distributed()
    if spec.kind == "local":
        try:
            # CRITICAL: a failed task is reported once, as one line, by run_tasks; the workers' own
            # multi-line "Compute Failed" logs would bury it on the terminal.
            cluster = distributed.LocalCluster(n_workers=spec.workers, threads_per_worker=1, processes=True,
                                               dashboard_address=None, silence_logs=logging.CRITICAL)
        except Exception as err:
            raise SchedulerError(f"cannot start a local dask cluster of {spec.workers} workers ({_line(err)})") from err
        try:
            with distributed.Client(cluster) as client:
                yield client
        finally:
            cluster.close()
        return
    try:
        client = distributed.Client(spec.address, timeout=connect_timeout)
    except (OSError, TimeoutError) as err:
        raise SchedulerError(
            f"cannot reach the dask scheduler at {spec.address} ({_line(err)}); "
            "check HOST:PORT and that 'dask scheduler' is running there, or use --scheduler local:N"
        ) from err
    try:
        yield client
    finally:
        client.close()


def run_tasks(fn: Callable[..., Any], items: Sequence[Any], *, client: Any = None, progress: bool = False,
              desc: str = "tasks", unit: str = "task", **kwargs: Any) -> list[Any]:
    """``[fn(item, **kwargs) for item in items]``, in this process or as Dask tasks, with a progress bar.

    Args:
        fn: a module-level function (workers import it by name).
        items: one task each; small objects (paths, settings), never models or tables.
        client: a ``distributed.Client``, or None to run the loop here.
        progress: a tqdm bar over finished tasks on stderr.
        desc, unit: the bar's label and unit.
        **kwargs: passed to every call (shared settings of the job).

    Returns:
        The results in the order of ``items`` (not the order they finished in).

    Raises:
        The first failed task's error, once every task has ended (so none writes after it is raised);
        SchedulerError at once when a worker died (the remaining tasks are cancelled).
    """
    from tqdm.auto import tqdm

    results: list[Any] = [None] * len(items)
    with tqdm(total=len(items), desc=desc, unit=unit, disable=not progress, leave=False) as bar:
        if client is None:
            for i, item in enumerate(items):
                results[i] = fn(item, **kwargs)
                bar.update(1)
            return results
        distributed = _distributed()
        futures = client.map(fn, list(items), pure=False, **kwargs)
        where = {f.key: i for i, f in enumerate(futures)}
        # A failing task does not stop the others: they run to the end before its error is raised.
        # Dask cannot stop a task that already runs, so cancelling would let tasks handed out before
        # the failure write their partitions *after* the caller saw the error (and after a rerun with
        # --force had emptied the folder). Only a dead worker ends the job at once.
        first_error: BaseException | None = None
        try:
            for future in distributed.as_completed(futures):
                try:
                    results[where[future.key]] = future.result()
                except distributed.KilledWorker as err:
                    raise SchedulerError(
                        f"a dask worker died while running {desc} {where[future.key]} ({_line(err)}); "
                        "it may have run out of memory: use smaller partitions or fewer threads per worker"
                    ) from err
                except Exception as err:  # noqa: BLE001 - re-raised below, once every task has ended
                    first_error = first_error or err
                bar.update(1)
        finally:
            client.cancel([f for f in futures if not f.done()])
    if first_error is not None:
        raise first_error
    return results


def _line(err: BaseException, limit: int = 300) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return f"{type(err).__name__}: {text[: limit - 3] + '...' if len(text) > limit else text}"
