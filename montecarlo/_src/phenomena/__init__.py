"""Neighbouring phenomena: spectra of random networks, the SGD simulator, the invariant measure of constant-step SGD."""
