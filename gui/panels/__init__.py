"""The main window's panels (image list, quantization, layers, metrics, sweep, status)."""
