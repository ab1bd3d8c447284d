"""Stage 1: the command line checked before TensorFlow loads (preflight, schema, ranges, errors),
and the text tables every later stage prints or writes (text_table.py).

Imports no TensorFlow and nothing of the later stages; those add their own checks to
`pipeline.check.registry` instead.
"""
