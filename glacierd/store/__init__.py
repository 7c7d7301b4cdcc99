"""The state store: the record of truth, and the only code that writes state."""
