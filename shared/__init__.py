"""The Meet middleware's own package: everything two functions need lives here once."""
