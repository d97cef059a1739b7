"""The vehicle agent: one car's parts wired together and linked to the cloud."""
