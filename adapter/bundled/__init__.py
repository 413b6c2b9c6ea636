"""The bundled Burgas pipeline file (a link to config/burgas.yaml, shipped in the wheel)."""
