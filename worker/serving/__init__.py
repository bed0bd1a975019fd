"""Serving the cell classifier: pure code, arrays and bytes in, arrays and classifications out.

Preprocessing, the LiteRT engine, the model card, Grad-CAM heatmaps and the sample's automatic result.
No Django, no TensorFlow, no SciPy: the web process and the Celery workers both import it, and it imports
neither of them (tests/test_import_direction.py).
"""
