"""The runtime core every task shares: bundles, interpreters (LiteRT, TFLite Micro), quantization,
flatbuffer reading, file I/O, errors, argument types and plots. Imports nothing above it."""
