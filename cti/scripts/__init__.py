"""AGI scripts: one module per call flow, each registered by name when the app is composed."""
