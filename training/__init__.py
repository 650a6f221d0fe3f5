"""Recipe for ravemap's embedded default model and loop: `python -m training --help`.

Modules, one job each: config (settings), synth (the sound family), dataset (data step and
batches), model (architecture), spectral (STFT loss and distance), train, export (PCA and the
nn~ interface), loop (the default loop), descriptors (RMS, centroid, f0, Spearman), evaluate
(acceptance figures), report (figures into models/README.md).
"""
