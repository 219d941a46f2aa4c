"""Post-training remedies: win back the accuracy quantization loses, without training."""
