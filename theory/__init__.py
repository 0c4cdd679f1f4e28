"""Symbolic statements of the gradient-confusion theory (Sankararaman et al., ICML 2020).

Each result of the paper becomes a checkable sympy object in this package.
``theory`` never imports ``montecarlo``: the theory stands apart from the
simulation that tests it.
"""

__all__: list[str] = []
