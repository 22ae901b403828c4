"""Scale-out: score many files and run hyperparameter scans in parallel on a Dask cluster.

The same partition and grid-point functions run in one process (no scheduler) or as Dask tasks
(``local[:N]`` or ``tcp://HOST:PORT``), so both paths give the same results. Dask is imported only
inside ``hepml_core.scale.cluster``, and only when a scheduler is asked for.

Import from the defining modules: ``plan`` (files → partitions), ``cluster`` (schedulers, task
execution), ``scoring`` (score a glob into a Parquet folder), ``scan`` (study grids).
"""

__all__: list[str] = []
