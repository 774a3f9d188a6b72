"""Model sources (embedded wheels, hub, local, tiny) and the one loading policy every stage uses."""
