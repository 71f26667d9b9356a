"""tinysense edge runtime: loads model bundles and runs them with numpy + LiteRT only.

Nothing in this package imports TensorFlow, the trainer or the exporter, so
`pip install tinysense[edge]` on a Raspberry Pi stays small.
"""
__version__ = "0.1.0"
