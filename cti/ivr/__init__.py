"""IVR flows, opening hours and per-number voice messages (built on the foundation)."""
