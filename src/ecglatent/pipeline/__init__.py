"""One module per DVC stage: each reads params, does its step, writes its outputs."""
