"""Input data contracts: Great Expectations suites evaluated against model inputs."""
