"""One module per figure, ``f<NN>_<name>.py``; each defines ``FIGURE`` (a :class:`paper_figures.Figure`).

The figures are found here, not listed: ``MODULES`` are the ``f<NN>_*``
modules of this package in the order of their numbers (the paper's), so a
new figure is one new module.
"""

from __future__ import annotations

import importlib
import pkgutil
import re

#: The figure modules in the order of their numbers (the paper's); each defines ``FIGURE``.
MODULES = tuple(importlib.import_module(f"{__name__}.{info.name}")
                for info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name)
                if re.fullmatch(r"f\d\d_\w+", info.name))

#: Every figure, in paper order (``MODULES``' ``FIGURE``).
ALL = [module.FIGURE for module in MODULES]
