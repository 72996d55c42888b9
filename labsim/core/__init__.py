"""The core layer: the clock, the event loop, the transport (HTTP client, pipes,
connections), numbers and metrics. It imports nothing else of labsim's."""
