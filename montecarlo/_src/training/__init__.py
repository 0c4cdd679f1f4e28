"""Training on real data: the CNN/MLP models, the datasets, the per-example Gram of a torch module, training grids."""
