"""tbpipe: config-driven TensorFlow + TensorBoard experiments, composed by Hydra."""

__version__ = "0.1.0"
