"""eventmill broker: API, Redis state and the child processes it owns."""
