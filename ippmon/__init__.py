"""ippmon: a terminal monitor for ipyparallel clusters."""

__version__ = "0.1.0"
