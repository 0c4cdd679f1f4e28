"""Trials: one object per kind of random network that says how a trial is drawn and what Gram blocks it yields.

* ``base``   -- the :class:`Trial` seam every engine (``sample_confusion``, ``sample_grams``, ``rare_tail``,
  the command line) reads, and what a draw is;
* ``mlp``    -- :class:`MLPTrial`, the paper's network (lazy or dense weights, on the Gram backends);
* ``module`` -- :class:`ModuleTrial`, any torch module with parameters drawn by declared laws.

A new kind of network is a new Trial here; nothing in ``engines`` changes.
"""
