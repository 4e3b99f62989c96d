"""Broker storage: the small async interfaces (`base`) and their backends (`sqlite`)."""
