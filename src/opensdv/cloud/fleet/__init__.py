"""The fleet cloud: operators and tenants, the REST API and the dashboard."""
