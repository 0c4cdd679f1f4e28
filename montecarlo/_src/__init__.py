"""The machinery behind ``montecarlo``'s public names, one room per step of the flow a reader follows.

* ``draw``       -- one trial's random network (``network``), its activations and losses (``elementwise``),
  the data on the sphere and the labels (``data``), the seeded random source (``random_source``);
* ``gram``       -- the exact per-example gradient Gram of drawn layers: the backend table, the factorised
  equation (numpy/torch), lazy exact sampling, the numba kernel;
* ``statistics`` -- confusion statistics of a Gram (``gram_statistics``) and tails with exact intervals (``tails``);
* ``engines``    -- running many trials: ``sampling`` (sample_confusion / sample_grams), ``sweep`` and its
  results ``store``, the rare-event engine (``rare_event``, ``tail_run``), the infinite-width law (``infinite_width``);
* ``training``   -- real data: ``models`` (CNN-beta-l, MLPs), ``datasets``, one training run (``loop``: SGD,
  checkpoints, the divergence rule), grids of runs into a results store, here or on Dask (``runs``);
* ``phenomena``  -- neighbouring phenomena: ``spectra``, the SGD simulator (``sgd``), ``invariant_measure``.

Beside them: ``validation`` (argument checks), ``provenance`` (code fingerprints) and ``cli``.  Imports run
down this list (a room may use the rooms above it), never back up.
"""
