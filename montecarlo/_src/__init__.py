"""The machinery behind ``montecarlo``'s public names, one room per step of the flow a reader follows.

* ``draw``       -- one trial's random network (``network``, its layers' dense or lazy draws ``layers``), its
  activations and losses (``elementwise``), the data on the sphere and the labels (``data``), the seeded random
  source and its replay (``random_source``);
* ``gram``       -- the exact per-example gradient Gram of drawn layers: the backend table, the factorised
  equation (numpy/torch), lazy exact sampling, the numba kernel; the Gram of any torch module
  (``module_gram``) and of a batch of its parameter draws (``module_batch``);
* ``statistics`` -- confusion statistics of a Gram, one declaration each (``gram_statistics.STATISTICS``),
  tails with exact intervals (``tails``), means and rates (``means``, ``rates``, ``decay``);
* ``trials``     -- one object per kind of random trial (the seam every engine reads): ``base`` (Trial),
  ``mlp`` (the paper's network), ``module`` (any torch module), ``replay`` (a trial as a function of its normals);
* ``engines``    -- running many trials: ``sampling`` (sample_confusion / sample_grams), ``sweep`` and its
  results store (``store``: the table; ``store_format``, ``store_claims``, ``store_files``), rare tails (``subset_simulation``, generic in f; ``splitting_state``; ``tail_result``;
  ``trial_tail``, for trials; ``tail_run``, resumable in a store), the exact-data estimator (``conditional``, ``great_circle``), the
  infinite-width law (``infinite_width``);
* ``training``   -- real data: ``models`` (CNN-beta-l, MLPs), ``datasets``, one training run (``loop``: SGD,
  checkpoints, the divergence rule), grids of runs into a results store, here or on Dask (``runs``);
* ``phenomena``  -- neighbouring phenomena: ``spectra``, the SGD simulator (``sgd``), ``invariant_measure``.

Beside them: ``validation`` (argument checks) and ``provenance`` (code fingerprints, package versions), which
every room may use, and ``cli`` on top.  Imports run down this list (a room may use the rooms above it), never
back up (``tests/project/test_architecture.py`` checks it).
"""
