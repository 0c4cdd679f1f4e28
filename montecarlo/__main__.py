"""``python -m montecarlo sweep|tail|train|show ...`` (``python -m montecarlo --help`` lists them).

``parser()`` builds the command line's argument parser (the documentation
renders its help text); ``main(argv)`` runs a command and returns its exit
status.
"""

from ._src.cli import _parser as parser
from ._src.cli import main

__all__ = ["main", "parser"]

if __name__ == "__main__":
    raise SystemExit(main())
