"""Summary sinks: one small class per TensorBoard summary kind, each chosen in conf/sinks/."""

from pipeline.sinks.base import Experiment, Sink

__all__ = ["Experiment", "Sink"]
