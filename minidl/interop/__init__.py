"""Models from and to other libraries: `minidl.interop.keras` reads Keras 2 model files
(the JSON architecture and the HDF5 weights) into a minidl GraphModel;
`minidl.interop.onnx` writes a minidl model as ONNX, for ONNX Runtime."""
