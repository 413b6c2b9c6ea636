"""NGSI-LD wire format: serialisation, @context, entity ids and the broker client."""
