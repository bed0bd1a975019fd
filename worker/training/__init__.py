"""Training the cell classifier: TensorFlow, SciPy and scikit-learn (the `training` extra only).

Dataset and patient split, architecture, augmentation, training, calibration fitting, export to LiteRT
and evaluation. Imports worker.serving (the same preprocessing and engine); nothing imports this package
at run time. `python -m worker.training train|evaluate` is the command line (Makefile: train, evaluate).
"""
