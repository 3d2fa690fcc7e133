"""Demo scenarios: generated data, training recipes and fallbacks, used by the demo and the tests."""
