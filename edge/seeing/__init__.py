"""Seeing: image preprocessing, MNIST files, the camera, the digit reader and its commands
(classify-image, read-digits). Imports edge.core only."""
