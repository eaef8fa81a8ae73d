"""Settings, errors, security and observability shared by every part of the bridge."""
