"""Operator commands: migrations and API keys (`python -m ops --help`)."""
