"""Real data sets for `pipeline.data`'s classes: files read and checked, rows split and scaled.

Imports no TensorFlow: the preflight reads a data file through the same code as the run,
so what the check accepts is what the run trains on.
"""
