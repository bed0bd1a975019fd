"""Everything that touches the classifier: data, training, the inference engine, Celery tasks.

This is the only package that imports TensorFlow, and only lazily, inside the functions that need it.
"""
