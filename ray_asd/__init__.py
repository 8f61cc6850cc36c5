"""ray-asd: active synthetic data generation on Ray."""

__version__ = "0.1.0"
