"""Burgas NGSI-LD adapter: Smart Burgas and GIS-Burgas into FIWARE NGSI-LD brokers."""

__version__ = "0.1.0"
