"""Database models, sessions, migrations and data access for the bridge."""
