"""The quality tests run the real chain: they share the pipeline tests' fixtures."""

