"""What is known about a device's latency, in one place.

- `hwdiffnas.latency.reference`: HELP's reference cells, the device vector and the latency-quantile map (a leaf).
- `hwdiffnas.latency.tables`: which stored table serves a device (its config's preference order, user tables,
  campaign measurements) — the device-config policy the store itself does not apply.
- `hwdiffnas.latency.device`: `DeviceLatency` — exact latencies (table, imported or measured rows), the
  estimate with its one-sided bound for the other cells, and the ``pNN`` budget. Every command (``search``,
  ``bench``, ``oracle``) resolves a device and a quantile budget through it.

``pNN`` is the NN-th percentile of the device's latency over all connected cells of the space, each taken from
the best source available: exact where known, else the estimate. For a full table it is the table's percentile.
"""
