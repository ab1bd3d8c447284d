"""Stage 1: the command line checked before TensorFlow loads (preflight, schema, ranges, errors).

Imports no TensorFlow and nothing of the later stages; those add their own checks to
`pipeline.check.registry` instead.
"""
