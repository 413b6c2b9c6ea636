"""Sources: fetch and yield raw records only (see base.py for the protocol)."""
