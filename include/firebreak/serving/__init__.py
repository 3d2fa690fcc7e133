"""The serving gateway (``firebreak serve``): contract, routing, breaker, shadow, prediction log, metrics."""
