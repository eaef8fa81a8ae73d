"""Independent reference models that the contracts and the bridge are checked against."""
