"""tinysense exporter: TFLite quantization, model bundles, parity checks and firmware assets."""
