"""Gesture-to-latent mappings: regressors (regressor.py), training in a child process (trainer.py),
mapping files (store.py). Importing the package imports none of them (and no torch)."""
