"""`python -m ngsild_broker --port 1026 ...`: the broker on its own, without the adapter."""

from ngsild_broker.cli import app

app(prog_name="python -m ngsild_broker")
