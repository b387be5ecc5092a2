"""HTTP routes, one module per audience or standard."""
