"""The CPU budget of the training workers: how many jobs at once, their torch threads, their priority.

Read from the environment when a TrainingService starts (``HEPML_TRAIN_WORKERS``, ``HEPML_TRAIN_THREADS``,
``HEPML_TRAIN_NICE``); a bad value is one error naming the variable and what to set it to.
"""

from __future__ import annotations

import os

__all__ = ["default_budget", "default_niceness"]


def default_budget() -> tuple[int, int]:
    """(workers, threads per job) from the CPU budget.

    One core stays with the server's event loop when there are two or more (pages must answer while
    models train); of the rest, ``HEPML_TRAIN_THREADS`` (default: min(4, those cores)) torch threads go to
    each job, and ``HEPML_TRAIN_WORKERS`` (default: those cores // threads per job, at least 1) jobs run
    at once.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    usable = max(1, cores - 1)
    threads = _env_int("HEPML_TRAIN_THREADS") or min(4, usable)
    workers = _env_int("HEPML_TRAIN_WORKERS") or max(1, usable // threads)
    return workers, threads


def default_niceness() -> int:
    """How much lower than the server's the workers' CPU priority is: ``HEPML_TRAIN_NICE`` (default 10, 0-19).

    Pages come first: on two cores, 20 sessions moving thresholds while a model trains had a p95 round
    trip of 0.95 s with the worker at the server's priority (the clients, the server and the worker's
    simulation all compete); the kernel then gives the server the core whenever it has work, and the
    training takes what the pages leave, which is nearly all of it between moves.
    """
    text = os.environ.get("HEPML_TRAIN_NICE", "").strip()
    if not text:
        return 10
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"HEPML_TRAIN_NICE={text!r} is not a whole number; set it to 0-19 (default 10), "
                         "or unset it") from None
    if not 0 <= value <= 19:
        raise ValueError(f"HEPML_TRAIN_NICE={value} must be between 0 and 19; set it in that range, or unset it")
    return value


def _env_int(name: str) -> int | None:
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a whole number; set it to e.g. 1 or 2, or unset it") from None
    if value < 1:
        raise ValueError(f"{name}={value} must be at least 1; set it to e.g. 1 or 2, or unset it")
    return value
