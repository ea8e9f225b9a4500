"""Scripts that reproduce the paper's figures from the library."""
