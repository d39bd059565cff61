"""Models from other libraries in minidl: `minidl.interop.keras` reads Keras 2 model
files (the JSON architecture and the HDF5 weights) into a minidl GraphModel."""
