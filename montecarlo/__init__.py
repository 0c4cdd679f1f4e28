"""Monte Carlo of gradient confusion on random networks (Sankararaman et al., ICML 2020).

Public surface
--------------
Network and data
    MLP, Parameters, sample_sphere, LinearTeacher, TanhTeacher, RandomSigns, make_labels
Activations (the built-ins in ACTIVATIONS; one call adds one, for the finite-width code and theory's kernels)
    register_activation, activation_names
Exact per-example gradient Gram
    gradient_gram
Statistics of a Gram (exact functions of G)
    gram_statistics, eta_star, cosine_matrix, min_cosine, cosine_quantiles,
    fraction_negative, m_coherence, gradient_diversity, fisher_spectrum,
    squared_gradient_norms, undefined_cosine_pairs
Statistics as declarations (one ``Statistic`` each; ``sample_confusion`` and ``rare_tail`` read the table)
    STATISTICS, Statistic, register_statistic
Trials: how one random network with its data is drawn and what Gram it yields (any torch module too)
    Trial, TrialDraw, MLPTrial, ModuleTrial, ParameterLaw (.gaussian, .uniform, .orthogonal, .constant)
Monte Carlo at initialisation
    sample_confusion, ConfusionSample, sample_grams, GramSample, SEED_BLOCK
The infinite-width law (prediction beside the Monte Carlo; kernels in ``theory``)
    sample_infinite_width, InfiniteWidthSample
The finite-width fluctuation constants of the tangent-kernel cosine (inputs of ``theory.finite_width_excess``)
    cosine_fluctuations, CosineFluctuations
Jacobian, Fisher and Hessian spectra and forward norms of random networks
    sample_spectra, sample_forward_norms, input_output_jacobian, forward_norms, HessianOperator,
    lanczos, hutchinson_trace, summarise
Rare tails of the gradient cosine, the data's inner product integrated exactly (Beta law; exact-data estimator)
    conditional_cosine_tail, ConditionalTail
Rare-event tails by subset simulation (also ``python -m montecarlo tail``)
    rare_tail, rare_tail_of, RareTail, ChainsStoppedMoving, PopulationCollapsed, TailSpec, run_tail
Tails and fits (cosine tails: unconditional by default, ``conditional=True`` for the conditional one)
    clopper_pearson, exceedance, confusion_tail, cosine_tail, undefined_cosines, UndefinedCosines,
    fit_tail_exponent, ExponentFit, fit_bound_constant, THEORY_SYMBOLS (table columns -> theory's symbols)
Estimates with their standard errors, and the rates of rare tails (F16, F17)
    mean_se (mean +- s.e. of independent draws), mean_interval (and its Student-t interval), log_excess
    (log(Pr / floor), delta method), fit_power_decay, PowerDecayFit (log(Pr_l / floor) = C l^-a), fit_width_law,
    WidthLawFit (log(Pr_l / floor) = C / l - D / l^2), fit_weighted_line, LineFit, fit_tail_power, TailPowerFit
    (-log Pr = A x^q, bootstrap over repeats)
Two configurations compared over seeds (the training figures' unit of evidence: one value per seed)
    compare_seeds (paired or Welch t interval on the difference, and its verdict), SeedComparison
Sweeps and the results store (also ``python -m montecarlo sweep|show``)
    SweepSpec, run_sweep, tail_table, ResultsStore, StoreMismatch, StoreCorrupt,
    atomic_write (the store's write of a whole file or nothing; checkpoints and the figures' files use it too),
    write_verified, read_verified (a file and its checksum record; read back only if intact and what it claims)
SGD on finite sums with known constants (Theorems 3.1, 3.2)
    least_squares, LeastSquares, simulate_sgd, SGDPath
Constant-step SGD on a torch model and its invariant measure (Zhang et al.)
    constant_step_sgd, window_distances
Any torch model, and training with confusion tracked (paper section 7; also ``python -m montecarlo train``)
    module_gram, ModuleGram, CNN, ClassifierMLP, build_model, load_dataset, Dataset,
    TrainingGrid, run_training, train_run, minibatch_cosines
Which code made a result (every store records it; the figures' runner hashes its own source the same way)
    code_fingerprint, git_commit, source_digest

Everything under ``montecarlo._src`` is private machinery.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from ._src import provenance as _provenance
from ._src.provenance import source_digest

# The public names below are imported on first access (``__getattr__``, PEP 562), so that ``import montecarlo``
# (and ``python -m montecarlo --help``) loads neither torch nor numba, sympy or pandas.  These imports are what a
# type checker, an IDE and the import graph (tests/project/test_architecture.py) read; ``_SOURCES`` says the same
# at run time (tests/cli/test_lazy_imports.py holds the two to the same names).
if TYPE_CHECKING:
    from ._src.draw.data import LABELS, LinearTeacher, RandomSigns, TanhTeacher, make_labels, sample_sphere
    from ._src.draw.elementwise import ACTIVATIONS, LOSSES, activation_names, register_activation
    from ._src.gram import BACKENDS, gradient_gram
    from ._src.statistics.gram_statistics import (
        STATISTICS,
        Statistic,
        register_statistic,
        cosine_matrix,
        cosine_quantiles,
        eta_star,
        fisher_spectrum,
        fraction_negative,
        gradient_diversity,
        gram_statistics,
        m_coherence,
        min_cosine,
        squared_gradient_norms,
        undefined_cosine_pairs,
    )
    from ._src.training.datasets import Dataset, load_dataset
    from ._src.training.models import CNN, ClassifierMLP, build_model
    from ._src.gram.module_gram import ModuleGram, module_gram
    from ._src.training.loop import minibatch_cosines, train_run
    from ._src.training.runs import TrainingGrid, run_training
    from ._src.engines.infinite_width import InfiniteWidthSample, sample_infinite_width
    from ._src.phenomena.spectra import (
        HessianOperator,
        forward_norms,
        hutchinson_trace,
        input_output_jacobian,
        lanczos,
        sample_forward_norms,
        sample_spectra,
        summarise,
    )
    from ._src.draw.network import INITS, MLP, Parameters
    from ._src.draw.random_source import SEED_BLOCK
    from ._src.engines.conditional import ConditionalTail, conditional_cosine_tail
    from ._src.engines.fluctuations import CosineFluctuations, cosine_fluctuations
    from ._src.statistics.decay import PowerDecayFit, fit_power_decay
    from ._src.statistics.means import mean_interval, mean_se
    from ._src.statistics.seeds import SeedComparison, compare_seeds
    from ._src.statistics.rates import (
        LineFit,
        TailPowerFit,
        WidthLawFit,
        fit_tail_power,
        fit_weighted_line,
        fit_width_law,
        log_excess,
    )
    from ._src.engines.splitting_state import PopulationCollapsed
    from ._src.engines.subset_simulation import ChainsStoppedMoving, rare_tail_of
    from ._src.engines.tail_result import RareTail
    from ._src.engines.trial_tail import rare_tail
    from ._src.engines.tail_run import TailSpec, run_tail
    from ._src.engines.sampling import ConfusionSample, GramSample, sample_confusion, sample_grams
    from ._src.trials.base import Trial, TrialDraw
    from ._src.trials.mlp import MLPTrial
    from ._src.trials.module import ModuleTrial, ParameterLaw
    from ._src.phenomena.invariant_measure import constant_step_sgd, window_distances
    from ._src.phenomena.sgd import LeastSquares, SGDPath, least_squares, simulate_sgd
    from ._src.engines.store import ResultsStore, StoreCorrupt, StoreMismatch
    from ._src.engines.store_files import atomic_write
    from ._src.engines.store_format import read_verified, write_verified
    from ._src.engines.sweep import SweepSpec, run_sweep, tail_table
    from ._src.statistics.tails import (
        THEORY_SYMBOLS,
        ExponentFit,
        UndefinedCosines,
        clopper_pearson,
        confusion_tail,
        cosine_tail,
        exceedance,
        fit_bound_constant,
        fit_tail_exponent,
        undefined_cosines,
    )

#: Defining module (relative to this package) -> the public names it gives; ``__getattr__`` imports a module on the
#: first access to one of its names.
_SOURCES = {
    '._src.draw.data': ('LABELS', 'LinearTeacher', 'RandomSigns', 'TanhTeacher', 'make_labels', 'sample_sphere'),
    '._src.draw.elementwise': ('ACTIVATIONS', 'LOSSES', 'activation_names', 'register_activation'),
    '._src.gram': ('BACKENDS', 'gradient_gram'),
    '._src.statistics.gram_statistics': (
        'STATISTICS', 'Statistic', 'register_statistic', 'cosine_matrix', 'cosine_quantiles', 'eta_star',
        'fisher_spectrum', 'fraction_negative', 'gradient_diversity', 'gram_statistics', 'm_coherence', 'min_cosine',
        'squared_gradient_norms', 'undefined_cosine_pairs',
    ),
    '._src.training.datasets': ('Dataset', 'load_dataset'),
    '._src.training.models': ('CNN', 'ClassifierMLP', 'build_model'),
    '._src.gram.module_gram': ('ModuleGram', 'module_gram'),
    '._src.training.loop': ('minibatch_cosines', 'train_run'),
    '._src.training.runs': ('TrainingGrid', 'run_training'),
    '._src.engines.infinite_width': ('InfiniteWidthSample', 'sample_infinite_width'),
    '._src.phenomena.spectra': (
        'HessianOperator', 'forward_norms', 'hutchinson_trace', 'input_output_jacobian', 'lanczos',
        'sample_forward_norms', 'sample_spectra', 'summarise',
    ),
    '._src.draw.network': ('INITS', 'MLP', 'Parameters'),
    '._src.draw.random_source': ('SEED_BLOCK',),
    '._src.engines.conditional': ('ConditionalTail', 'conditional_cosine_tail'),
    '._src.engines.fluctuations': ('CosineFluctuations', 'cosine_fluctuations'),
    '._src.statistics.decay': ('PowerDecayFit', 'fit_power_decay'),
    '._src.statistics.means': ('mean_interval', 'mean_se'),
    '._src.statistics.seeds': ('SeedComparison', 'compare_seeds'),
    '._src.statistics.rates': (
        'LineFit', 'TailPowerFit', 'WidthLawFit', 'fit_tail_power', 'fit_weighted_line', 'fit_width_law', 'log_excess',
    ),
    '._src.engines.splitting_state': ('PopulationCollapsed',),
    '._src.engines.subset_simulation': ('ChainsStoppedMoving', 'rare_tail_of'),
    '._src.engines.tail_result': ('RareTail',),
    '._src.engines.trial_tail': ('rare_tail',),
    '._src.engines.tail_run': ('TailSpec', 'run_tail'),
    '._src.engines.sampling': ('ConfusionSample', 'GramSample', 'sample_confusion', 'sample_grams'),
    '._src.trials.base': ('Trial', 'TrialDraw'),
    '._src.trials.mlp': ('MLPTrial',),
    '._src.trials.module': ('ModuleTrial', 'ParameterLaw'),
    '._src.phenomena.invariant_measure': ('constant_step_sgd', 'window_distances'),
    '._src.phenomena.sgd': ('LeastSquares', 'SGDPath', 'least_squares', 'simulate_sgd'),
    '._src.engines.store': ('ResultsStore', 'StoreCorrupt', 'StoreMismatch'),
    '._src.engines.store_files': ('atomic_write',),
    '._src.engines.store_format': ('read_verified', 'write_verified'),
    '._src.engines.sweep': ('SweepSpec', 'run_sweep', 'tail_table'),
    '._src.statistics.tails': (
        'THEORY_SYMBOLS', 'ExponentFit', 'UndefinedCosines', 'clopper_pearson', 'confusion_tail', 'cosine_tail',
        'exceedance', 'fit_bound_constant', 'fit_tail_exponent', 'undefined_cosines',
    ),
}

_MODULE_OF = {name: module for module, names in _SOURCES.items() for name in names}


def __getattr__(name: str):
    """A public name on first access (PEP 562): import its module, cache the object in this module's globals."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    """Every public name, imported or not yet, beside the module's own."""
    return sorted({*globals(), *__all__})


def code_fingerprint() -> str:
    """Fingerprint of the code that makes the numbers: 16 hex digits of a SHA-256 of ``montecarlo`` and ``theory``.

    Every stored result records it and is reused only while it is unchanged:
    the hash covers the path and bytes of every ``.py`` file of both installed
    packages, so any edit (even of a docstring) makes stored results stale and
    recomputed, never silently reused.  Computed once per process and cached:
    it describes the code this process runs.

    Returns
    -------
    str
        16 hex digits; equal fingerprints mean byte-identical ``.py`` sources of both packages.
    """
    return _provenance.code_fingerprint()  # looked up at each call, so that a test can substitute it


def git_commit() -> str | None:
    """The git commit of the checkout ``montecarlo`` and ``theory`` live in (for people; reuse follows the fingerprint).

    Returns
    -------
    str or None
        ``git rev-parse HEAD`` in the package folder, with ``"+dirty"``
        appended when tracked files under ``montecarlo/`` or ``theory/`` are
        modified; ``None`` outside a git checkout, without git, or when
        anything fails.  Cached per process.
    """
    return _provenance.git_commit()

__all__ = [
    "code_fingerprint",
    "git_commit",
    "source_digest",
    "constant_step_sgd",
    "window_distances",
    "ChainsStoppedMoving",
    "ConditionalTail",
    "conditional_cosine_tail",
    "CosineFluctuations",
    "cosine_fluctuations",
    "PowerDecayFit",
    "fit_power_decay",
    "mean_se",
    "mean_interval",
    "SeedComparison",
    "compare_seeds",
    "log_excess",
    "fit_weighted_line",
    "LineFit",
    "fit_width_law",
    "WidthLawFit",
    "fit_tail_power",
    "TailPowerFit",
    "PopulationCollapsed",
    "RareTail",
    "TailSpec",
    "rare_tail",
    "rare_tail_of",
    "run_tail",
    "SEED_BLOCK",
    "InfiniteWidthSample",
    "HessianOperator",
    "forward_norms",
    "hutchinson_trace",
    "input_output_jacobian",
    "lanczos",
    "sample_forward_norms",
    "sample_spectra",
    "summarise",
    "sample_infinite_width",
    "ConfusionSample",
    "CNN",
    "ClassifierMLP",
    "Dataset",
    "TrainingGrid",
    "build_model",
    "load_dataset",
    "minibatch_cosines",
    "run_training",
    "train_run",
    "ExponentFit",
    "ModuleGram",
    "module_gram",
    "GramSample",
    "LeastSquares",
    "ResultsStore",
    "atomic_write",
    "read_verified",
    "write_verified",
    "SGDPath",
    "StoreCorrupt",
    "StoreMismatch",
    "SweepSpec",
    "clopper_pearson",
    "confusion_tail",
    "cosine_tail",
    "undefined_cosines",
    "UndefinedCosines",
    "exceedance",
    "fit_bound_constant",
    "THEORY_SYMBOLS",
    "fit_tail_exponent",
    "least_squares",
    "run_sweep",
    "sample_confusion",
    "Trial",
    "TrialDraw",
    "MLPTrial",
    "ModuleTrial",
    "ParameterLaw",
    "STATISTICS",
    "Statistic",
    "register_statistic",
    "sample_grams",
    "simulate_sgd",
    "tail_table",
    "ACTIVATIONS",
    "activation_names",
    "register_activation",
    "BACKENDS",
    "INITS",
    "LABELS",
    "LOSSES",
    "MLP",
    "LinearTeacher",
    "Parameters",
    "RandomSigns",
    "TanhTeacher",
    "cosine_matrix",
    "cosine_quantiles",
    "eta_star",
    "fisher_spectrum",
    "fraction_negative",
    "gradient_diversity",
    "gradient_gram",
    "gram_statistics",
    "m_coherence",
    "make_labels",
    "min_cosine",
    "sample_sphere",
    "squared_gradient_norms",
    "undefined_cosine_pairs",
]
