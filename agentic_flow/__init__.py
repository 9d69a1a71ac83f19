"""agentic-flow: run AI agents on the Anthropic Messages API or on a free, private, local ONNX model."""

__version__ = "0.1.0"
