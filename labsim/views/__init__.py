"""The views layer: what shows a cluster or a run to people and other programs (reports,
the dashboard, snapshots, remote readings, exports, comparisons)."""
