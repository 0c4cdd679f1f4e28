"""Shared test settings: Hypothesis profiles (no deadline: numba compiles on the first example), the numba kernel compiled once a run, the Dask cluster.

The tests live in one folder per room (``tests/draw/``, ``tests/gram/``, ...) and reach montecarlo's internals
through ``montecarlo.testing`` only.  ``tests/`` itself is on ``sys.path`` (pyproject's ``pythonpath``, for
``autograd_reference``), so no folder here may take the name of an importable package: ``theory``'s tests are in
``theory_results/``, since a ``tests/theory/`` folder would shadow the package under a plain ``pytest``.
"""

import os
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, settings

#: Workers of the shared Dask cluster (two, as each test's own cluster had), one thread each.
DASK_WORKERS = 2

settings.register_profile(
    "default", deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", deadline=None, max_examples=400, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_configure(config):
    """Under pytest-xdist (``python3 tasks.py test`` runs one worker process per core), each worker computes on one
    thread (torch, numba, BLAS), as the main job's workers do: on two cores, from a fresh clone, the suite took 380 s
    in one process, 317 s in two workers of two threads each and 290 s in two of one thread.  Tests that compare
    thread counts set them explicitly.  The processes its tests start (command lines, notebook kernels, writers
    racing each other) inherit one thread for torch and BLAS from the environment."""
    if hasattr(config, "workerinput"):  # an xdist worker (numba's threads: after the warm-up, below)
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(1)
        config._blas_limit = threadpool_limits(limits=1)  # held for the worker's life
        # for the processes the tests start; not NUMBA_NUM_THREADS, which numba reads again in this process (its
        # configuration is reloaded when it compiles) and refuses to change once its threads run
        for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[variable] = "1"


#: Compiles (or loads from numba's cache) the Gram kernel in one precision: the parallel kernel through
#: sample_confusion, and for float64 the serial one through one trial of gradient_gram.
WARM_KERNEL = """
import numpy as np
import montecarlo as mc
net = mc.MLP(6, 8, 2, activation="tanh")
mc.sample_confusion(net, 3, 16, labels="random_sign", loss="square", seed=0, dtype="{dtype}", backend="numba")
if "{dtype}" == "float64":
    mc.gradient_gram(net, net.init(0), mc.sample_sphere(3, 6, 0), np.ones(3), backend="numba")
"""


@pytest.fixture(scope="session", autouse=True)
def numba_kernels_compiled_once(tmp_path_factory, request):
    """The numba kernel compiled into its cache once a run, before any test, both precisions at once (issue 25).

    Compiling takes most of a cold run's first minute (about 40 s per precision on two cores, one after the other
    when the tests reach them); here float32 compiles in a second process while float64 compiles in this one, and
    every later process (Dask workers, command lines, notebook kernels) loads both from the cache.  On a warm cache
    it costs the loading, about a second.
    """
    from filelock import FileLock

    # one compilation for the whole run: pytest-xdist's workers share the folder above their base temporary folder,
    # and the first to take the lock compiles while the other waits, then loads from the cache
    with FileLock(tmp_path_factory.getbasetemp().parent / "numba-kernels.lock"):
        background = subprocess.Popen([sys.executable, "-c", WARM_KERNEL.format(dtype="float32")],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        exec(WARM_KERNEL.format(dtype="float64"), {})
        _, errors = background.communicate(timeout=900)
    assert background.returncode == 0, errors
    if hasattr(request.config, "workerinput"):
        # an xdist worker on one numba thread from here on, not before its first kernel ran: set before, a later
        # run on two threads (the thread-count test of sampling) took 20 s instead of 0.06 s
        import numba

        numba.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def dask_cluster():
    """One local Dask cluster for every test that computes on Dask (issue 25): two single-threaded worker processes,
    one numba thread each, as ``scheduler="local"`` gives on two cores.  Starting it and importing the package into
    its workers costs several seconds, once a run instead of once a test; tests and command lines reach it by
    ``dask_cluster.scheduler_address``.  A test may kill a worker: its nanny starts a new one (``dask_client``
    waits for it)."""
    from dask.distributed import LocalCluster

    # each worker imports the package as it starts (preload), both at once, and so does a replacement of a killed one
    with LocalCluster(n_workers=DASK_WORKERS, threads_per_worker=1, processes=True, dashboard_address=None,
                      env={"NUMBA_NUM_THREADS": "1"}, preload=["montecarlo"]) as cluster:
        yield cluster


@pytest.fixture
def dask_client(dask_cluster):
    """A client of its own on the shared cluster, once the cluster is as new: both workers up and answering (a
    worker killed by an earlier test has been replaced) and no task left on the scheduler, so no result of an
    earlier test can be handed to this one under the same key.  Closing it releases this test's tasks."""
    from dask.distributed import Client

    with Client(dask_cluster) as client:
        deadline = time.monotonic() + 120
        while True:
            try:
                client.wait_for_workers(DASK_WORKERS, timeout=max(1.0, deadline - time.monotonic()))
                answering = client.run(os.getpid)
                tasks = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
            except (OSError, TimeoutError):  # a worker died between the two looks
                answering, tasks = {}, -1
            if len(answering) == DASK_WORKERS and tasks == 0:
                break
            assert time.monotonic() < deadline, f"the shared Dask cluster did not settle: {answering}, {tasks} tasks"
            time.sleep(0.05)
        yield client
