"""Internal names the tests and benchmarks use; no stability promise beyond this list.

The public surface of ``montecarlo`` is its ``__all__`` and the command line (``montecarlo.__main__``: ``main``,
``parser``).  The tests also check the machinery behind it; this module is the one place they reach it, so that
no test imports a ``montecarlo._src`` path or an underscore name, and a move inside ``_src`` is one edit here.
Names below may change with the machinery; this list says what exists now.  Grouped by room
(``montecarlo/_src/__init__.py``):

Modules (a test patches one of their attributes with ``monkeypatch.setattr``, or reads several of them)
    validation, provenance, cli, elementwise, numba_kernel, numpy_backend, lazy, conditional, sweep, tail_run,
    loop, runs
draw
    NormalSource, ReplaySource, block_seed (the seeded random source, its replay, one block's seed);
    DENSE, LAZY_GAUSSIAN, LAZY_ORTHOGONAL, LayerDraw, draw_layers, lazy_layers (a layer's draw and its mode);
    unregister_activation (removes an activation added by ``register_activation`` from both registries, so that a
    test leaves the process-wide registries as it found them)
gram
    gram_blocks (the factorised equation), GRAM_BACKENDS, Backend, backend_names, resolve_backend (the backend
    table); numba_frame, cached_kernel (below)
statistics
    resolve_statistic (a statistic's declaration from its name, parametrised names included)
trials
    drawn_numbers, estimated_peak_bytes (an MLP trial's normals and memory), TrialStatistic (a trial as a
    function of its normals)
engines
    SubsetSimulation, correlation_factor, SplittingState, population_flags, MIN_BRANCH_SHARE (subset simulation
    and its state), state_frame, state_from_frame (a state as a stored frame), output_factor (the infinite-width
    output factor), writer_host (the host name in the store's temporary files), sweep_dask_client (below)
training
    LOSS, DIVERGENCE_FACTOR, is_diverging, tracked_epochs (one run), SETTING_DEFAULTS, TRAIN_DEFAULTS,
    diverged_runs (the grid), read_idx, read_cifar_batch, CIFAR_FILES, load_digits, load_mnist, load_cifar10
    (the datasets' readers)

Three names are private where they live, and have a plain alias here only because a test needs the object itself:

* ``numba_frame`` -- ``gram.numba_kernel._frame``, the numba kernel's QR frame of a layer's inputs (Cholesky QR2
  with a Householder fallback); a test checks it against numpy's QR directly, since through ``sample_confusion``
  a wrong sign convention would not show.
* ``cached_kernel`` -- ``gram.numba_kernel._trials_parallel``, one cached kernel: numba's cache folder of it holds
  the stamp of the cache guard, which a test reads.
* ``sweep_dask_client`` -- ``engines.sweep._dask_client``, the Dask client a sweep computes on; with
  ``scheduler="local"`` it starts a cluster of its own and stops it after, which a test looks at while it runs.
"""

from ._src import cli, provenance, validation
from ._src.draw import elementwise
from ._src.draw.elementwise import unregister_activation
from ._src.draw.layers import DENSE, LAZY_GAUSSIAN, LAZY_ORTHOGONAL, LayerDraw, draw_layers, lazy_layers
from ._src.draw.random_source import NormalSource, ReplaySource, block_seed
from ._src.engines import conditional, sweep, tail_run
from ._src.engines.infinite_width import output_factor
from ._src.engines.splitting_state import MIN_BRANCH_SHARE, SplittingState, population_flags
from ._src.engines.store_files import writer_host
from ._src.engines.subset_simulation import SubsetSimulation, correlation_factor
from ._src.engines.tail_run import state_frame, state_from_frame
from ._src.gram import GRAM_BACKENDS, Backend, backend_names, lazy, numba_kernel, numpy_backend, resolve_backend
from ._src.gram.factorised import gram_blocks
from ._src.statistics.gram_statistics import resolve_statistic
from ._src.training import loop, runs
from ._src.training.datasets import CIFAR_FILES, load_cifar10, load_digits, load_mnist, read_cifar_batch, read_idx
from ._src.training.loop import DIVERGENCE_FACTOR, LOSS, is_diverging, tracked_epochs
from ._src.training.runs import SETTING_DEFAULTS, TRAIN_DEFAULTS, diverged_runs
from ._src.trials.mlp import drawn_numbers, estimated_peak_bytes
from ._src.trials.replay import TrialStatistic

numba_frame = numba_kernel._frame
cached_kernel = numba_kernel._trials_parallel
sweep_dask_client = sweep._dask_client

__all__ = [
    # modules
    "validation", "provenance", "cli", "elementwise", "numba_kernel", "numpy_backend", "lazy", "conditional",
    "sweep", "tail_run", "loop", "runs",
    # draw
    "NormalSource", "ReplaySource", "block_seed", "DENSE", "LAZY_GAUSSIAN", "LAZY_ORTHOGONAL", "LayerDraw",
    "draw_layers", "lazy_layers", "unregister_activation",
    # gram
    "gram_blocks", "GRAM_BACKENDS", "Backend", "backend_names", "resolve_backend", "numba_frame", "cached_kernel",
    # statistics
    "resolve_statistic",
    # trials
    "drawn_numbers", "estimated_peak_bytes", "TrialStatistic",
    # engines
    "SubsetSimulation", "correlation_factor", "SplittingState", "population_flags", "MIN_BRANCH_SHARE",
    "state_frame", "state_from_frame", "output_factor", "writer_host", "sweep_dask_client",
    # training
    "LOSS", "DIVERGENCE_FACTOR", "is_diverging", "tracked_epochs", "SETTING_DEFAULTS", "TRAIN_DEFAULTS",
    "diverged_runs", "read_idx", "read_cifar_batch", "CIFAR_FILES", "load_digits", "load_mnist", "load_cifar10",
]
