"""``python -m montecarlo sweep ...`` and ``python -m montecarlo show DIR``."""

from ._src.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
