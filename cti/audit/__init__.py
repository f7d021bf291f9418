"""The audit log: who changed what, when, through any route."""
