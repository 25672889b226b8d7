"""Data layer: the SynthPosts benchmark, the paper's CSV format, safe image loading and the
tensors the models consume."""
