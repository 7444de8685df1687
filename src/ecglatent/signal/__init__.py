"""Pure numpy/scipy signal processing on arrays: no I/O, no torch."""
