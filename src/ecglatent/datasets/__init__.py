"""Beat tables on disk and the splits over them."""
