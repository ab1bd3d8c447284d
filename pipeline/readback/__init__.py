"""Stage 5: reading runs back. Event files, `tbpipe report`, `tbpipe board`, the histogram guide.

Needs no training code: anything here works on any TensorBoard logdir.
"""
