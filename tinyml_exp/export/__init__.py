"""Export stage: Keras model -> .h5/.keras, .tflite, C header and generated C inference code."""
