"""Everything about the cell classifier, by role. Imports point one way, from the top of this list down.

- worker/tasks.py: Celery tasks, the only Django-aware part; ids in, one diagnostics service call.
- worker/tools/: benchmarks and evaluation tools (the Makefile's bench-* targets).
- worker/training/: TensorFlow, SciPy, scikit-learn (the `training` extra): training, calibration, export.
- worker/serving/: pure inference, imported by web and workers: preprocessing, the LiteRT engine, the model
  card, Grad-CAM, the sample's automatic result. No Django, no TensorFlow, no SciPy.
- worker/model/: the shipped model and its card.
"""
