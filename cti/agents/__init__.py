"""Agent desktop and screen pops over websockets."""
