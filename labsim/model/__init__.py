"""The model layer: what a scenario describes (topology, kinds, latency models, load,
faults, expectations, the typed result) and the theory that predicts it. Pure data and
arithmetic; it reads only `core`."""
