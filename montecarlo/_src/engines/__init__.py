"""Engines that run many trials: sampling, sweeps into results stores, rare-event tails, the infinite-width law."""
