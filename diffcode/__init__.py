"""diffcode: lossless image compression with differentiable entropy codes."""
