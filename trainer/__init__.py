"""tinysense trainer: datasets, Keras models and training loops (TensorFlow; GPU when there is one)."""
