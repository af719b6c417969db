"""One module per data source; each exposes ``load(...) -> Dataset`` and its file names."""
