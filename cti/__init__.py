"""cti: CTI and voice front-end server for help desks running their own Asterisk."""

__version__ = "0.1.0"
