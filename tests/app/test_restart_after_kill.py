"""Kill ``hepml serve`` while its first-start training saves a run, then restart it on the same runs folder.

What a user relies on: no training process survives the server, the half-written run is listed as
``incomplete`` (never as finished), ``load`` refuses it, and the restarted app answers and does not offer
it in any run selector, while it still offers the complete runs.

A run folder is ``.incomplete-*`` only while it is being written (tens of milliseconds), so the test
watches the runs folder and, the moment one appears, freezes the training worker (SIGSTOP) to hold it
mid-save, then SIGKILLs the server: the worker must die with it (it is stopped, so only the kernel's
parent-death signal can end it, which is the mechanism under test).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
from fake_training import alive

from hepml_core.exceptions import RunError
from hepml_core.runs import RunStore

ROOT = Path(__file__).resolve().parents[2]
HEPML = ROOT / ".venv" / "bin" / "hepml"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(runs: Path, log: Path) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    cmd = [str(HEPML), "serve", "--runs-dir", str(runs), "--port", str(port), "--events", "6000", "--epochs", "2"]
    env = {**os.environ, "HEPML_TRAIN_WORKERS": "1", "HEPML_TRAIN_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    return proc, port


def _get(url: str, timeout: float = 120.0) -> str:
    end, last = time.time() + timeout, None
    while time.time() < end:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.read().decode("utf-8", "replace")
        except OSError as err:
            last = err
            time.sleep(0.25)
    raise AssertionError(f"{url} did not answer within {timeout:.0f} s: {last}")


def _offered(url: str) -> str:
    """Every option of every selector in a real session of the served page (via Bokeh's websocket client)."""
    import importlib
    import pkgutil

    import panel.models
    from bokeh.client import pull_session

    for module in pkgutil.iter_modules(panel.models.__path__):  # the client must know Panel's model types
        importlib.import_module(f"panel.models.{module.name}")

    session = pull_session(url=url)
    try:
        options = [getattr(model, "options", None) for model in session.document.models]
        return repr([o for o in options if o])
    finally:
        session.close()


def _user_run(runs: Path) -> str:
    """A small complete classifier run of the user's own ntuple: what the restarted app must still offer."""
    from hepml_core.pipeline import train_from_config

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 1500)
    frame = pd.DataFrame(rng.normal(size=(1500, 3)) + y[:, None] * 0.8, columns=["a", "b", "c"])
    frame["process"] = np.array(["signal", "background"])[y]
    source = runs.parent / "ntuple.csv"
    frame.to_csv(source, index=False)
    config = {"data": {"source": str(source), "features": ["a", "b", "c"], "label": "process"},
              "model": {"kind": "mlp_classifier"}, "train": {"epochs": 1, "batch_size": 256}}
    return train_from_config(config, RunStore(runs)).id


def _workers(server: subprocess.Popen) -> list[int]:
    try:
        return [p.pid for p in psutil.Process(server.pid).children(recursive=True)
                if "resource_tracker" not in " ".join(p.cmdline())]
    except psutil.NoSuchProcess:
        return []


def _hold_a_save(runs: Path, server: subprocess.Popen, timeout: float = 400.0) -> str:
    """Wait for a ``.incomplete-*`` folder and freeze the training worker while it exists; return its name."""
    end, workers, checked = time.time() + timeout, [], 0.0
    while time.time() < end:
        assert server.poll() is None, "the server ended by itself"
        if time.time() - checked > 0.1:
            workers, checked = _workers(server), time.time()
        partial = [e.name for e in os.scandir(runs) if e.name.startswith(".incomplete-")]
        if partial and workers:
            for pid in workers:
                os.kill(pid, signal.SIGSTOP)
            still = [name for name in partial if (runs / name).is_dir()]
            if still:
                return still[0]
            for pid in workers:  # the save finished just before the stop: wait for the next one
                os.kill(pid, signal.SIGCONT)
        assert not any(e.name.split("-")[2:3] == ["study"] for e in os.scandir(runs)), \
            "the first-start training finished before any save could be caught"
        time.sleep(0.001)
    raise AssertionError(f"no .incomplete-* folder appeared in {runs} within {timeout:.0f} s")


def _end(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.kill()
        server.wait(30)


@pytest.mark.slow
def test_killed_server_leaves_an_incomplete_run_that_is_never_offered(tmp_path):
    runs = tmp_path / "runs"
    user_id = _user_run(runs)
    server, port = _serve(runs, tmp_path / "first.log")
    try:
        _get(f"http://127.0.0.1:{port}/he_study", timeout=180)
        partial = _hold_a_save(runs, server)
        family = [p.pid for p in psutil.Process(server.pid).children(recursive=True)]
        os.kill(server.pid, signal.SIGKILL)
        server.wait(30)
        end = time.time() + 10
        while any(alive(pid) for pid in family) and time.time() < end:
            time.sleep(0.05)
        assert not [pid for pid in family if alive(pid)], "a process of the killed server is still running"
    except Exception as err:
        raise AssertionError(f"{err}\n--- server log ---\n{(tmp_path / 'first.log').read_text()[-3000:]}") from err
    finally:
        _end(server)

    run_id = partial[len(".incomplete-"):]
    assert (runs / partial).is_dir() and not (runs / run_id).exists()  # nobody finished it behind our back

    again, port = _serve(runs, tmp_path / "again.log")
    try:
        _get(f"http://127.0.0.1:{port}/he_study", timeout=180)  # the restarted app answers
        your_data = _offered(f"http://localhost:{port}/your_data")
        he_study = _offered(f"http://localhost:{port}/he_study")
        store = RunStore(runs)
        status = {info.id: info.status for info in store.list()}
        assert status[run_id] == "incomplete" and status[user_id] == "complete"
        with pytest.raises(RunError, match="incomplete"):
            store.load(run_id)
        assert user_id in your_data  # the run selector offers the complete run...
        assert run_id not in your_data and run_id not in he_study  # ...and never the partial one
    except Exception as err:
        raise AssertionError(f"{err}\n--- restarted server log ---\n{(tmp_path / 'again.log').read_text()[-3000:]}") \
            from err
    finally:
        family = _workers(again)
        _end(again)
        end = time.time() + 10
        while any(alive(pid) for pid in family) and time.time() < end:
            time.sleep(0.05)
        assert not [pid for pid in family if alive(pid)], "the restarted server left a training process behind"
